// Package dirlock keeps a data dir to one server: the server holds an
// exclusive advisory lock (flock) on a lock file in the directory while it
// runs, and a second server on the same directory is refused at start. The
// lock ends with the process, however it ends (a SIGKILL too), so there is
// no stale lock to clear. The commands that edit the data dir do not take
// it: they work beside a running server.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is the lock file's name in the data dir.
const File = "server.lock"

// ErrLocked says that another server holds the data dir.
var ErrLocked = errors.New("another gateway is already serving this data dir")

// Lock is a held lock on a data dir.
type Lock struct {
	f *os.File
}

// Acquire takes the lock on dir (which must exist) without waiting, or
// fails with an error wrapping ErrLocked when another server holds it.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, File)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data dir: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w (%s is locked); stop it first, or give this one another GATEWAY_DATA_DIR", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock the data dir: %w", err)
	}
	return &Lock{f: f}, nil
}

// Release lets the lock go. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the file releases the flock
	l.f = nil
	return err
}
