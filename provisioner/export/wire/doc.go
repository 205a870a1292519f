// Package wire is the NFSv3 backend of export.FS: the provisioner speaks
// MOUNT v3 and NFS v3 over TCP with AUTH_SYS itself, so no NFS mount is
// needed in its pod.
//
// The RPC transport (record marking, one reader goroutine per connection,
// an XID to pending-call map, deadlines on every call, redial after a
// dropped or stalled connection) is the project's own package sunrpc, and
// the NFSv3 and MOUNT XDR codec is this package's, which decodes from complete, size-limited records with every
// length checked: a malformed reply is an error, never a panic or a huge
// allocation. Only constants (program, procedure and status numbers) come
// from github.com/willscott/go-nfs-client, whose transport has defects
// that wrapping cannot contain. The layers, by file, are in
// docs/architecture.md.
//
// Wiring:
//
//	op := wire.NewOpener(wire.Options{
//		Timeout:  10 * time.Second,        // per call, when the context has no earlier deadline
//		Observer: func(server, op string, d time.Duration, err error) {
//			nfsOpSeconds.WithLabelValues(server, op, wire.Result(err)).Observe(d.Seconds())
//		},
//	})
//	defer op.Close()
//	fsys, err := op.Open(ctx, "nfs.example.com", "/export") // an export.FS
//	_, err = fsys.Stat(ctx, ".")                            // readiness, as health.Checker does
//
// Round trips with the export's handles cached: MkdirAll of a directory
// whose parent is known, 1 (MKDIR with mode and owner in its attributes);
// Rename, 2 (LOOKUP of the target, which must not exist, and RENAME);
// RemoveAll of an empty directory, 1 (RMDIR); Stat, 1 (LOOKUP).
//
// Credentials (AUTH_SYS): a directory for uid X is created as X (with the
// parent's gid among X's groups), so that it works on a root_squash export
// whose parent X may write; as root when the parent's mode bits say X may
// search but not write it (an admin-owned export root on a
// no_root_squash export), each falling back to the other on
// NFS3ERR_ACCES/PERM. Root is never used to create in a directory X may
// not even search. Removes and renames act as the owner of the directory
// they change, falling back to root.
package wire
