"""Rootless networking (slirp4netns, pasta) opens /dev/net/tun as the user.  Where the host
leaves it root-only (0600: no udev rule made it 0666), `TunGrant` lets one uid open it
through a POSIX ACL entry naming only that uid, taken out again by release(), the mode
restored when no other named entry is left."""

import os
import struct

TUN = "/dev/net/tun"
ACL_XATTR = "system.posix_acl_access"
# posix_acl_xattr: a u32 version, then (u16 tag, u16 perm, u32 id) entries sorted by tag.
ACL_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF


def _acl_entries(blob):
    version = struct.unpack_from("<I", blob)[0]
    if version != ACL_VERSION:
        raise ValueError(f"{TUN}: unknown ACL version {version}")
    return [struct.unpack_from("<HHI", blob, off) for off in range(4, len(blob), 8)]


def _acl_blob(entries):
    return struct.pack("<I", ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in sorted(entries))


def tun_usable_by_all():
    try:
        return (os.stat(TUN).st_mode & 0o006) == 0o006
    except OSError:
        return False


class TunGrant:
    """rw on /dev/net/tun for one uid through an ACL entry, when others may not open it."""

    def __init__(self, uid):
        self.uid = uid
        self.granted = False
        if not os.path.exists(TUN) or tun_usable_by_all():
            return
        st = os.stat(TUN)
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            owner = (st.st_mode >> 6) & 7
            group = (st.st_mode >> 3) & 7
            entries = [
                (ACL_USER_OBJ, owner, ACL_UNDEFINED_ID),
                (ACL_GROUP_OBJ, group, ACL_UNDEFINED_ID),
                (ACL_OTHER, st.st_mode & 7, ACL_UNDEFINED_ID),
            ]
        entries = [e for e in entries if e[0] != ACL_MASK]
        entries.append((ACL_USER, 6, uid))
        mask = 0
        for tag, perm, _ in entries:
            if tag in (ACL_USER, ACL_GROUP_OBJ, ACL_GROUP):
                mask |= perm
        entries.append((ACL_MASK, mask, ACL_UNDEFINED_ID))
        os.setxattr(TUN, ACL_XATTR, _acl_blob(entries))
        self.granted = True

    def _ours(self, entries):
        return [e for e in entries if e[0] == ACL_USER and e[2] == self.uid]

    def release(self):
        """Take our entry out; with no other named entry left (another run may have added
        its own meanwhile), drop the ACL and put back the mode its base entries keep (the
        group bits show the mask while there is one)."""
        if not self.granted:
            return
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            return
        rest = [e for e in entries if e not in self._ours(entries)]
        if any(t in (ACL_USER, ACL_GROUP) for t, _, _ in rest):
            os.setxattr(TUN, ACL_XATTR, _acl_blob(rest))
        else:
            base = {t: p for t, p, _ in rest}
            mode = base.get(ACL_USER_OBJ, 6) << 6 | base.get(ACL_GROUP_OBJ, 0) << 3 | base.get(ACL_OTHER, 0)
            os.removexattr(TUN, ACL_XATTR)
            os.chmod(TUN, (os.stat(TUN).st_mode & 0o7000) | mode)
        self.granted = False

    def leftovers(self):
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            return []
        return [f"{TUN} ACL entry for uid {self.uid}"] if self._ours(entries) else []
