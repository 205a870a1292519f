package wire

// AUTH_SYS credentials. The server checks permissions against them (and
// maps uid 0 to the anonymous user on a root_squash export), so each
// operation is sent as the user most likely to be allowed, falling back to
// others on NFS3ERR_ACCES / NFS3ERR_PERM.

// asUser is uid/gid with gid and the extra groups as auxiliary gids.
func asUser(uid, gid uint32, extra ...uint32) *cred {
	gids := make([]uint32, 0, 1+len(extra))
	gids = append(gids, gid)
	for _, g := range extra {
		dup := false
		for _, h := range gids {
			dup = dup || g == h
		}
		if !dup {
			gids = append(gids, g)
		}
	}
	return &cred{UID: uid, GID: gid, GIDs: gids}
}

// ownerFirst is the owner of a directory (to act inside it: a user-made
// tree on a root_squash export is writable only by its owners), then root.
func ownerFirst(a attrs, extraGIDs ...uint32) []*cred {
	if a.uid == 0 {
		return []*cred{&rootCred}
	}
	return []*cred{asUser(a.uid, a.gid, extraGIDs...), &rootCred}
}

// mkdirCreds chooses who creates a directory owned by uid/gid in parent p.
// The new owner is tried first (on a root_squash export only it can set
// itself as owner), root first when p's mode bits say the owner may search
// p but not write it (an admin-owned export root: one round trip rather
// than two). Root is never tried when the owner may not even search p: a
// directory private to someone else is refused, not overridden.
func mkdirCreds(p attrs, uid, gid uint32) []*cred {
	if uid == 0 {
		return []*cred{&rootCred}
	}
	user := asUser(uid, gid, p.gid)
	switch {
	case !permits(p, user, 1):
		return []*cred{user}
	case permits(p, user, 3):
		return []*cred{user, &rootCred}
	default:
		return []*cred{&rootCred, user}
	}
}

// permits reports whether c has all of bits (4 read, 2 write, 1 search) on
// an object with attributes a, by its mode bits.
func permits(a attrs, c *cred, bits uint32) bool {
	if c.UID == 0 {
		return true
	}
	shift := uint32(0)
	switch {
	case a.uid == c.UID:
		shift = 6
	case inGroup(a.gid, c):
		shift = 3
	}
	return (a.mode>>shift)&bits == bits
}

func inGroup(gid uint32, c *cred) bool {
	if c.GID == gid {
		return true
	}
	for _, g := range c.GIDs {
		if g == gid {
			return true
		}
	}
	return false
}

// withCreds runs op as each credential in turn while the server denies it.
func withCreds(creds []*cred, op func(*cred) error) error {
	var err error
	for _, c := range creds {
		if err = op(c); !isDenied(err) {
			return err
		}
	}
	return err
}
