package export

import "context"

// Version is the NFS protocol version an export is to be spoken to with, as a class or the
// provisioner's settings say it: "3", "4.1", "auto" (4.1 when the server answers it, else 3), or
// "" for the provisioner's default. Backends that speak one version ignore it.
type Version string

type versionKey struct{}

// WithVersion is ctx carrying the version the exports opened under it are spoken to with; an
// Opener reads it with VersionFrom. It travels in the context so that every operation on a
// volume (through Gate.Do) uses its class's version without each caller passing it on.
func WithVersion(ctx context.Context, v Version) context.Context {
	return context.WithValue(ctx, versionKey{}, v) // "" too: the default, whatever an outer call said
}

// VersionFrom is the version ctx carries, or "".
func VersionFrom(ctx context.Context) Version {
	v, _ := ctx.Value(versionKey{}).(Version)
	return v
}

// VersionOf is the version an FS is spoken to with ("3", "4.1"), when its backend says.
func VersionOf(fsys FS) Version {
	if v, ok := fsys.(interface{ NFSVersion() Version }); ok {
		return v.NFSVersion()
	}
	return ""
}
