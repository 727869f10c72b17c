package buses

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ovosgw/gateway/busclient"
)

func keysOf(t *testing.T, urls ...string) []string {
	t.Helper()
	var keys []string
	for _, u := range urls {
		k, err := Key(u)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

func sessions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("session-%d", i)
	}
	return out
}

func first(keys []string, sid string) string {
	return keys[Pick(keys, sid, func(int) bool { return true })]
}

// A session's choice depends on the set of buses, not on their order in the
// list, and is the same every time it is asked.
func TestRendezvousIsStable(t *testing.T) {
	abc := keysOf(t, "ws://a:8181/core", "ws://b:8181/core", "ws://c:8181/core")
	cab := []string{abc[2], abc[0], abc[1]}
	for _, sid := range sessions(1000) {
		again := first(abc, sid)
		if first(abc, sid) != first(cab, sid) || first(abc, sid) != again {
			t.Fatalf("session %s: choice depends on the list's order", sid)
		}
		order := Order(abc, sid)
		if abc[order[0]] != first(abc, sid) {
			t.Fatalf("session %s: Order %v disagrees with Pick", sid, order)
		}
		sorted := slices.Clone(order)
		slices.Sort(sorted)
		if !slices.Equal(sorted, []int{0, 1, 2}) {
			t.Fatalf("Order %v is not a permutation", order)
		}
	}
}

// Every bus gets a share of the sessions.
func TestRendezvousSpreads(t *testing.T) {
	keys := keysOf(t, "ws://a:8181/core", "ws://b:8181/core", "ws://c:8181/core")
	count := map[string]int{}
	for _, sid := range sessions(3000) {
		count[first(keys, sid)]++
	}
	for _, k := range keys {
		// 1000 expected; a hash that ignored a bus would give it none.
		if count[k] < 800 {
			t.Fatalf("bus %s got %d of 3000 sessions: %v", k, count[k], count)
		}
	}
}

// Adding a bus moves only the sessions that now choose it; removing one
// moves only the sessions it had; a bus that is down sends each of its
// sessions to that session's second choice, and the others stay.
func TestRendezvousMovesOnlyWhatMust(t *testing.T) {
	three := keysOf(t, "ws://a:8181/core", "ws://b:8181/core", "ws://c:8181/core")
	four := append(slices.Clone(three), keysOf(t, "ws://d:8181/core")...)
	moved := 0
	for _, sid := range sessions(2000) {
		before, after := first(three, sid), first(four, sid)
		if before != after {
			if after != four[3] {
				t.Fatalf("session %s moved from %s to %s, not to the new bus", sid, before, after)
			}
			moved++
		}
	}
	if moved == 0 || moved > 2000/4+150 {
		t.Fatalf("%d of 2000 sessions moved to the fourth bus, want about 500", moved)
	}
	two := three[:2] // c removed
	for _, sid := range sessions(2000) {
		before, after := first(three, sid), first(two, sid)
		if before != three[2] && before != after {
			t.Fatalf("session %s moved from %s to %s although its bus stayed", sid, before, after)
		}
	}
	for _, sid := range sessions(2000) {
		order := Order(three, sid)
		down := order[0]
		got := Pick(three, sid, func(i int) bool { return i != down })
		if got != order[1] {
			t.Fatalf("session %s: with its bus down it went to %d, want its second choice %d", sid, got, order[1])
		}
		if other := (down + 1) % 3; other != order[0] {
			// A bus that is not the session's own going down moves nothing.
			if got := Pick(three, sid, func(i int) bool { return i != other }); got != order[0] {
				t.Fatalf("session %s moved when another session's bus went down", sid)
			}
		}
	}
	if Pick(three, "s", func(int) bool { return false }) != -1 {
		t.Fatal("a bus picked while none is up")
	}
}

// Key names the bus, not the spelling: case, a default port and user
// information do not make another bus.
func TestKey(t *testing.T) {
	for _, same := range [][2]string{
		{"ws://A:80/core", "ws://a/core"},
		{"wss://a/core", "WSS://a:443/core"},
		{"ws://user:pw@a:8181/core", "ws://a:8181/core"},
		{"ws://a:8181", "ws://a:8181/"},
	} {
		k1, err1 := Key(same[0])
		k2, err2 := Key(same[1])
		if err1 != nil || err2 != nil || k1 != k2 {
			t.Fatalf("%q and %q: %q, %q (%v, %v)", same[0], same[1], k1, k2, err1, err2)
		}
	}
	if k1, _ := Key("ws://a:8181/core"); k1 == mustKey(t, "ws://a:8182/core") || k1 == mustKey(t, "wss://a:8181/core") {
		t.Fatal("another port or scheme is the same bus")
	}
}

func mustKey(t *testing.T, u string) string {
	t.Helper()
	k, err := Key(u)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A bad list is refused with an error naming the entry, never its password.
func TestParseListRefusesBadEntries(t *testing.T) {
	for _, tt := range []struct{ list, want string }{
		{"ws://a:8181/core,,ws://b:8181/core", "entry 2 is empty"},
		{"ws://a:8181/core, ", "entry 2 is empty"},
		{"ws://a:8181/core,ws://b:8181/core,ws://A:8181/core", "entry 3 (ws://A:8181/core) names the same bus as entry 1"},
		{"ws://a:8181/core,http://b:8181/core", "entry 2 (http://b:8181/core): not a ws:// or wss:// URL"},
		{"ws://:8181/core", "entry 1 (ws://:8181/core): no host"},
		{"ws://a:8181/core,ws://user:secret@b:99999/core", "entry 2 (ws://b:99999/core): bad port"},
		{"b:8181", "entry 1"},
	} {
		_, err := ParseList(tt.list)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "GATEWAY_BUS_URL") {
			t.Errorf("%q: %v, want an error with %q", tt.list, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", tt.list, err)
		}
	}
	got, err := ParseList(" ws://a:8181/core , wss://b/core")
	if err != nil || !slices.Equal(got, []string{"ws://a:8181/core", "wss://b/core"}) {
		t.Fatalf("a good list: %v, %v", got, err)
	}
}

type fakeLink struct{ up bool }

func (f *fakeLink) Connected() bool { return f.up }
func (f *fakeLink) Status() busclient.Status {
	return busclient.Status{Connected: f.up, LastError: "refused"}
}
func (f *fakeLink) Stats() busclient.Stats { return busclient.Stats{Reconnects: 2} }

// The set picks among the links that are up, is ready while one is, and
// lists every bus with its state.
func TestSetFollowsItsLinks(t *testing.T) {
	links := []*fakeLink{{true}, {true}, {true}}
	set, err := NewSet([]string{"ws://u:p@a:8181/core", "ws://b:8181/core", "ws://c:8181/core"}, []Link{links[0], links[1], links[2]})
	if err != nil {
		t.Fatal(err)
	}
	sid := "s1"
	home := set.Pick(sid)
	links[home].up = false
	if got := set.Pick(sid); got == home || got != set.Order(sid)[1] {
		t.Fatalf("with its bus down the session went to %d (order %v)", got, set.Order(sid))
	}
	links[home].up = true
	if got := set.Pick(sid); got != home {
		t.Fatalf("the session did not return to its bus: %d, want %d", got, home)
	}
	for _, l := range links {
		l.up = false
	}
	links[2].up = true
	if ok, _ := set.Ready(); !ok {
		t.Fatal("not ready with one bus up")
	}
	states := set.States()
	if len(states) != 3 || states[0].Bus != "1" || states[0].State != "down" || states[2].State != "up" {
		t.Fatalf("states %+v", states)
	}
	links[2].up = false
	if ok, reason := set.Ready(); ok || !strings.Contains(reason, "bus 3 link down: refused") {
		t.Fatalf("ready with every bus down, or no reason: %v %q", ok, reason)
	}
	if set.Pick(sid) != -1 {
		t.Fatal("picked a bus while none is up")
	}
	infos := set.Infos()
	if infos[0].URL != "ws://a:8181/core" || infos[0].Reconnects != 2 {
		t.Fatalf("infos %+v (the URL must lose its user information)", infos[0])
	}
}
