package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ovosgw/gateway/internal/clients"
	"github.com/ovosgw/gateway/internal/clients/clientstest"
	"github.com/ovosgw/gateway/internal/store"
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
