package volume

import (
	"errors"
	"fmt"

	"github.com/nfs-subdir/nfs-subdir-provisioner/provisioner/export"
)

// Refusal is a final answer to a claim: what it asks for cannot be done, and the message says
// what to change. It is retried only when the claim or its class changes.
type Refusal struct {
	msg string
	err error // the server's answer it was made of, if any
}

func (e *Refusal) Error() string { return e.msg }
func (e *Refusal) Unwrap() error { return e.err }

// Is makes a refusal an answer for the server gate: it follows what the server said about the
// path, or needed no server at all.
func (e *Refusal) Is(target error) bool { return target == export.ErrServerReply }

// Refuse is a Refusal with a formatted message.
func Refuse(format string, args ...any) error {
	return &Refusal{msg: fmt.Sprintf(format, args...)}
}

// FinalAnswer is err as a Refusal when it is the server's final word on a claim's path (permission
// denied, something not a directory in the way, a path it refuses), else err unchanged.
func FinalAnswer(err error) error {
	if errors.Is(err, export.ErrPermission) || errors.Is(err, export.ErrNotDir) || errors.Is(err, export.ErrInvalidPath) {
		return &Refusal{msg: err.Error(), err: err}
	}
	return err
}
