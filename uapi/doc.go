// Package uapi reads WireGuard's configuration protocol text
// (https://www.wireguard.com/xplatform/#configuration-protocol) without
// applying it: it splits a set transaction into device and peer sections,
// validates every standard key the way upstream would, and recognizes
// wghooks' extension keys. Validating a whole transaction before upstream
// sees any of it is what lets a bad line leave the device as it was.
package uapi
