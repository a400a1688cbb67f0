package groupstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// FileStore keeps one JSON file per group in a directory; a read-modify-write
// holds an exclusive flock on the group's lock file, so processes sharing
// the directory (on one host) do not lose updates, and a group file is
// replaced atomically by rename.
type FileStore struct{ dir string }

// NewFileStore creates dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(id string) string { return filepath.Join(s.dir, id+".json") }

// Update implements Store.
func (s *FileStore) Update(ctx context.Context, id string, fn func(*Group) (*Group, error)) error {
	lock, err := os.OpenFile(filepath.Join(s.dir, id+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("group store: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("group store: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	var cur *Group
	if b, err := os.ReadFile(s.path(id)); err == nil {
		if cur, err = decode(b); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("group store: %w", err)
	}
	next, err := fn(cur)
	if err != nil {
		return err
	}
	if next == nil {
		if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("group store: %w", err)
		}
		return nil
	}
	b, err := encode(next)
	if err != nil {
		return err
	}
	tmp := s.path(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("group store: %w", err)
	}
	if err := os.Rename(tmp, s.path(id)); err != nil {
		return fmt.Errorf("group store: %w", err)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context, after string, limit int) ([]*Group, string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, "", fmt.Errorf("group store: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > limit {
		ids, next = ids[:limit], ids[limit-1]
	}
	var out []*Group
	for _, id := range ids {
		b, err := os.ReadFile(s.path(id))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, "", fmt.Errorf("group store: %w", err)
		}
		g, err := decode(b)
		if err != nil {
			return nil, "", err
		}
		out = append(out, g)
	}
	return out, next, nil
}

// LoadCursor implements Cursors.
func (s *FileStore) LoadCursor(ctx context.Context) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "_cursor"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// SaveCursor implements Cursors.
func (s *FileStore) SaveCursor(ctx context.Context, after string) error {
	return os.WriteFile(filepath.Join(s.dir, "_cursor"), []byte(after), 0o600)
}
