package jit

import (
	"net/netip"

	"github.com/wghooks/wghooks/device/feature"
)

// provision is provisionBatch of one key, as a lone first contact's
// batcher runs it.
func (j *JIT) provision(key feature.Key, src netip.AddrPort) {
	j.provisionBatch([]miss{{key: key, src: src}})
}
