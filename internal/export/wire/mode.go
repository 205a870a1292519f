package wire

import "os"

func modeOf(bits uint32) os.FileMode { return os.FileMode(bits & 0o7777) }
