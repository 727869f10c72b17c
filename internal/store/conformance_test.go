package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/clients/clientstest"
	"github.com/ovosgw/gateway/internal/store"
	"github.com/ovosgw/gateway/internal/store/storetest"
)

// The SQLite file passes the client registry's conformance suite, with two
// stores on one file standing for the server and the command line.
func TestClientStoreConformance(t *testing.T) {
	clientstest.Run(t, func(t *testing.T) (clients.Store, clients.Store) {
		path := filepath.Join(t.TempDir(), "gateway.db")
		open := func() clients.Store {
			s, err := store.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open()
	})
}

// twoHandles opens one fresh SQLite file twice.
func twoHandles(t *testing.T) (*store.Store, *store.Store) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	open := func() *store.Store {
		s, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

// The SQLite file passes the blacklist's and the protected intents'
// conformance suites.
func TestBlacklistConformance(t *testing.T) {
	storetest.RunBlacklist(t, func(t *testing.T) (storetest.Blacklist, storetest.Blacklist) {
		return twoHandles(t)
	})
}

func TestIntentsConformance(t *testing.T) {
	storetest.RunIntents(t, func(t *testing.T) (storetest.Intents, storetest.Intents) {
		return twoHandles(t)
	})
}
