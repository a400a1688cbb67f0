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
	"time"
)

// FileStore keeps one JSON file per group in a directory, a folder per
// tenant. A read-modify-write holds an exclusive flock on the group's lock
// file, so processes sharing the directory (on one host) do not lose
// updates; a group file is replaced atomically by rename, and its lock
// file is removed with it.
type FileStore struct{ dir string }

// NewFileStore returns the store in dir, creating dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(id string) string {
	return filepath.Join(s.dir, filepath.FromSlash(id)+".json")
}

// lockPoll is how often a waiting Update retries a held lock: flock itself
// cannot be interrupted by a context.
const lockPoll = 2 * time.Millisecond

// lock takes the exclusive lock of group id, waiting while ctx allows. The
// lock file may be removed by the holder that deletes the group, so after
// locking, the file is checked to still be the one at its path; if not,
// locking starts again on the new file.
func (s *FileStore) lock(ctx context.Context, id string) (*os.File, error) {
	p := s.path(id) + ".lock"
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("group store: %w", err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, fmt.Errorf("group store: waiting for the lock of group %s: %w", id, ctx.Err())
			case <-time.After(lockPoll):
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("group store: lock: %w", err)
		}
		held, err1 := f.Stat()
		cur, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, cur) {
			return f, nil
		}
		f.Close() // removed (or replaced) meanwhile: lock the new one
	}
}

// Update implements Store.
func (s *FileStore) Update(ctx context.Context, id string, fn func(*Group) (*Group, error)) error {
	if err := checkID(id); err != nil {
		return err
	}
	lock, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer lock.Close() // closing releases the flock
	var cur *Group
	exists := false
	if b, err := os.ReadFile(s.path(id)); err == nil {
		exists = true
		if err := reserve(ctx, len(b)); err != nil {
			return err
		}
		// A group that cannot be decoded is as good as absent: fn
		// replaces or removes it (List reports it meanwhile).
		cur, _ = decode(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("group store: %w", err)
	}
	next, err := fn(cur)
	if errors.Is(err, ErrKeep) {
		err = nil
		if exists {
			return nil
		}
		next = nil
	}
	if err != nil || (next == nil && !exists) {
		if !exists {
			// Nothing stored: leave no lock file behind either, or any
			// caller could create lock files without bound.
			s.removeLock(id)
		}
		return err
	}
	if next == nil {
		if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("group store: %w", err)
		}
		return s.removeLock(id)
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

// removeLock removes the lock file of id while its holder still holds the
// lock: waiters find the file gone and lock the new one.
func (s *FileStore) removeLock(id string) error {
	if err := os.Remove(s.path(id) + ".lock"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("group store: %w", err)
	}
	return nil
}

// ids returns every stored group id, sorted: files in the store's
// directory and in its tenant folders.
func (s *FileStore) ids() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("group store: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(s.dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("group store: %w", err)
			}
			for _, f := range sub {
				if id, ok := strings.CutSuffix(f.Name(), ".json"); ok {
					ids = append(ids, e.Name()+"/"+id)
				}
			}
			continue
		}
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context, after string, limit int) (Listing, error) {
	all, err := s.ids()
	if err != nil {
		return Listing{}, err
	}
	i, _ := slices.BinarySearch(all, after)
	for i < len(all) && all[i] <= after {
		i++
	}
	ids := all[i:]
	var l Listing
	if len(ids) > limit {
		ids = ids[:limit]
		l.Next = ids[limit-1]
	}
	for n, id := range ids {
		b, err := os.ReadFile(s.path(id))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return Listing{}, fmt.Errorf("group store: %w", err)
		}
		if rerr := reserve(ctx, len(b)); rerr != nil {
			if len(l.Groups) > 0 {
				// The page ends where the reservation does.
				l.Next = ids[n-1]
				return l, nil
			}
			err = fmt.Errorf("%w: %w", ErrTooLarge, rerr)
		}
		var g *Group
		if err == nil {
			g, err = decode(b)
		}
		if err != nil {
			if l.Corrupt == nil {
				l.Corrupt = map[string]error{}
			}
			l.Corrupt[id] = err
			continue
		}
		if g.ID == "" {
			g.ID = id
		}
		l.Groups = append(l.Groups, g)
	}
	return l, nil
}

// Count implements Store.
func (s *FileStore) Count(ctx context.Context, prefix string, max int) (int, error) {
	if dir, ok := strings.CutSuffix(prefix, "/"); ok && checkID(dir) == nil {
		// A tenant's folder: read only that.
		entries, err := os.ReadDir(filepath.Join(s.dir, dir))
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("group store: %w", err)
		}
		n := 0
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") {
				if n++; n > max {
					break
				}
			}
		}
		return n, nil
	}
	all, err := s.ids()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range all {
		if strings.HasPrefix(id, prefix) {
			if n++; n > max {
				break
			}
		}
	}
	return n, nil
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
