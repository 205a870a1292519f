// Package sunrpc is the ONC RPC (RFC 5531) transport the project's NFS clients share: calls over
// TCP with record marking, one reader goroutine per connection handing replies to callers by
// XID, a deadline on every call, redial after a dropped or stalled connection and one resend of
// a call whose connection died (marked export.ErrMaybeDone), AUTH_SYS credentials, reserved
// source ports, and the XDR primitives the protocol codecs above build on. Replies are decoded
// from complete, size-limited records with every length checked: a malformed reply is an error,
// never a panic or a huge allocation.
package sunrpc
