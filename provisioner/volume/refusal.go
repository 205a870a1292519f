package volume

import (
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Refusal is a final answer to a claim: what it asks for cannot be done, and the message says
// what to change. It is retried only when the claim or its class changes.
type Refusal struct{ msg string }

func (e *Refusal) Error() string { return e.msg }

// Is makes a refusal an answer for the server gate: it follows what the server said about the
// path, or needed no server at all.
func (e *Refusal) Is(target error) bool { return target == export.ErrServerReply }

// Refuse is a Refusal with a formatted message.
func Refuse(format string, args ...any) error {
	return &Refusal{msg: fmt.Sprintf(format, args...)}
}
