package wire

import "github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export/sunrpc"

// The transport's types under the names this package's codecs use.
type (
	encoder   = sunrpc.Encoder
	decoder   = sunrpc.Decoder
	cred      = sunrpc.Cred
	procedure = sunrpc.Procedure
	client    = sunrpc.Client
)

// rootCred is uid 0.
var rootCred = sunrpc.RootCred
