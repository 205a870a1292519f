package exporttest

import "os"

func modeOf(bits uint32) os.FileMode { return os.FileMode(bits) }
