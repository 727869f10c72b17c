package bans_test

import (
	"testing"

	"github.com/ovosgw/gateway/internal/bans"
	"github.com/ovosgw/gateway/internal/bans/banstest"
)

func TestMemCounter(t *testing.T) {
	banstest.Run(t, func(*testing.T) bans.Counter { return bans.NewMemCounter(0) })
}
