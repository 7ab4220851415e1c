// Package device is wghooks' WireGuard device, the core: it owns an
// unmodified upstream device built on wghooks' bind and TUN wrappers, keeps
// its own view of the configured peers, applies configuration (UAPI set
// transactions and the features' typed changes), counts, reports
// readiness, and builds the features its Config asks for in one place
// (features.go, which also says why they run in their order). Each feature
// is a package of its own under device/ and sees the core only through
// device/feature.
//
// Lock order: see the package doc of device/feature, where the whole
// device's order is written once.
package device
