package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ovosgw/gateway/internal/embedded/messagebus"
	"github.com/ovosgw/gateway/internal/gatewaytest"
)

// The waits of the browser steps: generous, since a step only waits as long
// as it takes; none of them is an assertion about speed.
const (
	stepTimeout = 20 * time.Second
	pollEvery   = 50 * time.Millisecond
)

// chromiumPath finds Debian's chromium. Without it the browser tests fail on
// CI (CI=true) and skip elsewhere: `make test` installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	const msg = "Debian's chromium is not installed: `make test` installs it " +
		"(apt-get install --no-install-recommends chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless chromium tab with what the page logged and every
// URL it requested.
type browser struct {
	t        *testing.T
	ctx      context.Context
	shots    string
	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	requests []string
}

func newBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 820),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Registered after t.TempDir: runs first, so the browser has exited
	// before its profile directory is removed.
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, shots: shots}
	messages := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
		}
	}()
	return b
}

// open goes to a section through the sidebar and waits until it shows
// (and, for a list, until the list has loaded).
func (b *browser) open(view string) {
	b.t.Helper()
	b.do("open "+view, chromedp.Click(chromedp.CSS(`.nav a[data-view="`+view+`"]`)))
	shown := fmt.Sprintf(`document.querySelector("main > .view:not([hidden])").dataset.view === %s`, js(view))
	if view != "talk" {
		shown += " && " + listReady(view+"-body")
	}
	b.until(view, shown)
}

// do runs actions, failing the test with what it was doing.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage shows:\n%s", what, err, b.pageText())
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript predicate to hold; on failure it reports
// what the page showed.
func (b *browser) until(what, predicate string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(pollEvery), chromedp.WithPollingTimeout(stepTimeout)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\npage shows:\n%s", what, err, b.pageText())
	}
}

// pageText is what the page shows, dialogs included, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return text
}

// shot saves a screenshot of the viewport as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	// Let entry animations settle: the picture is for a person to look at.
	b.do("settle", chromedp.Sleep(350*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// colorScheme emulates the system's light or dark preference ("" resets).
func (b *browser) colorScheme(scheme string) {
	b.t.Helper()
	var features []*emulation.MediaFeature
	if scheme != "" {
		features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	b.do("color scheme", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	}))
}

// clear empties an input, as selecting its text and deleting it would.
func clear(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%s).value = ""`, js(id)))
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Predicates on the conversation.
func assistantSaid(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".msg.assistant .bubble")].some(b => b.textContent.includes(%s))`, js(text))
}

func countAssistant(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".msg.assistant .bubble")].filter(b => b.textContent.includes(%s)).length`, js(text))
}

func userStatus(text, status, label string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(".msg.user")].some(m =>
		m.querySelector(".bubble").textContent === %s && m.dataset.status === %s &&
		m.querySelector(".status").textContent.toLowerCase().includes(%s))`, js(text), js(status), js(strings.ToLower(label)))
}

// listReady: the admin list in box has loaded and shows a table or an
// empty state.
func listReady(box string) string {
	return fmt.Sprintf(`(b => b && !b.hasAttribute("aria-busy") && b.querySelector("table, .empty") !== null)(document.getElementById(%s))`, js(box))
}

func linkState(state string) string {
	return fmt.Sprintf(`document.getElementById("link-pill").dataset.state === %s`, js(state))
}

const (
	desktopW, desktopH = 1280, 820
	phoneW, phoneH     = 390, 844
)

// link is a TCP relay between the browser and the gateway that the test can
// cut, as a dropped Wi-Fi would: open connections break and new ones fail
// until it is restored. Nothing in the console or the gateway knows.
type link struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	l.wg.Go(l.serve)
	t.Cleanup(func() {
		ln.Close()
		l.cut()
		l.wg.Wait()
	})
	return l
}

func (l *link) url() string { return "http://" + l.ln.Addr().String() }

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			c.Close()
			continue
		}
		l.mu.Lock()
		if l.down { // cut while dialling
			l.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		l.conns[c], l.conns[up] = struct{}{}, struct{}{}
		l.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			l.mu.Lock()
			delete(l.conns, dst)
			delete(l.conns, src)
			l.mu.Unlock()
		}
		l.wg.Go(func() { pipe(up, c) })
		l.wg.Go(func() { pipe(c, up) })
	}
}

// cut breaks every open connection and refuses new ones.
func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for c := range l.conns {
		c.Close()
	}
}

// restore lets connections through again.
func (l *link) restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
}

// TestConsole drives the console in a real chromium against the real
// gateway: a client talks (answers, not understood, a follow-up question, a
// protected intent's password, a stream drop that loses nothing), and the
// admin creates a client whose key then signs in, and manages the blacklist
// and protected intents. Screenshots of the main screens, desktop and phone,
// go to the test's artifact directory (go test -artifacts).
func TestConsole(t *testing.T) {
	shots := t.ArtifactDir()
	t.Logf("screenshots: %s", shots)
	// The test makes several wrong attempts on purpose (a wrong access key,
	// a wrong admin token, a wrong intent password) and ends a signed-in
	// session by rotating its key, whose stream's reconnection is refused:
	// every one counts towards an automatic ban of 127.0.0.1.
	// A short utterance timeout lets an unanswered question time out.
	g := gatewaytest.Start(t, map[string]string{"BAN_AFTER": "50", "UTTERANCE_TIMEOUT": "4s"})
	t.Cleanup(func() {
		if t.Failed() {
			logs := g.Logs()
			if len(logs) > 6000 {
				logs = logs[len(logs)-6000:]
			}
			t.Logf("gateway logs (tail):\n%s", logs)
		}
	})
	aliceKey := g.CreateClient(t, "alice", "kitchen")
	// The browser reaches the gateway through a link the test can cut.
	wire := newLink(t, strings.TrimPrefix(g.URL, "http://"))
	site := wire.url()
	b := newBrowser(t, shots)
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, func(t *testing.T) { b.t = t; f(t) }) {
			t.FailNow()
		}
		b.t = t
	}

	step("sign in with an alias", func(t *testing.T) {
		b.do("open the console", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.ID("login-client")))
		b.shot("desktop-01-sign-in")
		b.do("sign in",
			chromedp.SendKeys(chromedp.ID("login-client"), "kitchen"),
			chromedp.SendKeys(chromedp.ID("login-key"), "wrong-key\n"))
		b.until("the refusal", `!document.getElementById("login-error").hidden`)
		b.do("sign in again",
			clear("login-key"),
			chromedp.SendKeys(chromedp.ID("login-key"), aliceKey+"\n"))
		b.until("the link to come up", linkState("connected"))
		b.shot("desktop-02-talk")
		if got := eval[string](b, `document.getElementById("link-text").textContent`); got != "Connected" {
			t.Errorf("link pill says %q, want Connected", got)
		}
		if got := eval[string](b, `document.getElementById("login-key").value`); got != "" {
			t.Errorf("the access key is still in the form after sign-in")
		}
	})

	step("hello is answered", func(t *testing.T) {
		b.do("say hello", chromedp.SendKeys(chromedp.ID("composer-input"), "hello\n"))
		b.until("the answer", assistantSaid("Hello! How can I help you?"))
		b.until("the outcome", userStatus("hello", "handled", "Answered"))
	})

	step("gibberish is not understood", func(t *testing.T) {
		b.do("say gibberish", chromedp.SendKeys(chromedp.ID("composer-input"), "blorp zindle quax\n"))
		b.until("the outcome", userStatus("blorp zindle quax", "intent_failure", "Not understood"))
	})

	step("a follow-up question waits for the answer", func(t *testing.T) {
		b.do("ask for a question", chromedp.SendKeys(chromedp.ID("composer-input"), "ask me a question\n"))
		b.until("the question", assistantSaid("What is your favourite colour?")+
			` && !document.getElementById("followup").hidden && document.querySelector(".msg.assistant.asks") !== null`)
		if ph := eval[string](b, `document.getElementById("composer-input").placeholder`); !strings.Contains(ph, "answer") {
			t.Errorf("composer placeholder %q does not ask for an answer", ph)
		}
		b.shot("desktop-04-follow-up")
		b.do("answer", chromedp.SendKeys(chromedp.ID("composer-input"), "blue\n"))
		b.until("the reply to the answer", assistantSaid("You said blue.")+` && document.getElementById("followup").hidden`)
		b.until("the question's outcome", userStatus("ask me a question", "handled", "Answered")+
			` && document.querySelector(".msg.assistant.asks .tag.settled") !== null`)
	})

	step("a protected intent asks for its password", func(t *testing.T) {
		g.ProtectIntent(t, "joke.builtin:JokeIntent", "open sesame")
		before := eval[int](b, `document.querySelectorAll(".msg.assistant").length`)
		b.do("ask for a joke", chromedp.SendKeys(chromedp.ID("composer-input"), "tell me a joke\n"))
		b.until("the password prompt", `document.getElementById("password-dialog").open`)
		if txt := eval[string](b, `document.getElementById("password-text").textContent`); !strings.Contains(txt, "joke.builtin:JokeIntent") {
			t.Errorf("the prompt does not name the intent: %q", txt)
		}
		b.do("a wrong password", chromedp.SendKeys(chromedp.ID("password-input"), "not it\n"))
		b.until("the wrong password to be refused",
			`!document.getElementById("password-error").hidden && document.getElementById("password-dialog").open`)
		b.shot("desktop-05-password")
		b.do("the right password",
			clear("password-input"),
			chromedp.SendKeys(chromedp.ID("password-input"), "open sesame\n"))
		b.until("the prompt to close", `!document.getElementById("password-dialog").open`)
		b.until("the joke", userStatus("tell me a joke", "handled", "Answered")+
			fmt.Sprintf(` && document.querySelectorAll(".msg.assistant").length === %d`, before+1))
	})

	step("a dropped stream resumes without losing an answer", func(t *testing.T) {
		const said = "the stream came back"
		wire.cut()
		b.until("the link to drop", linkState("reconnecting"))
		// The same client, from another device, while this tab is cut off:
		// the answer is published to the client's stream, which this tab
		// must replay (Last-Event-ID) once it is back.
		var sess struct {
			Token string `json:"token"`
		}
		if st := g.Do(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "alice", "access_key": aliceKey}, &sess); st != http.StatusCreated {
			t.Fatalf("sign in from the test: status %d", st)
		}
		var res struct {
			Status string `json:"status"`
		}
		if st := g.Do(t, http.MethodPost, "/v1/utterances?wait=10s", sess.Token, map[string]string{"utterance": "say " + said}, &res); st != http.StatusOK || res.Status != "handled" {
			t.Fatalf("say while the tab is cut off: status %d, %q", st, res.Status)
		}
		if eval[bool](b, assistantSaid(said)) {
			t.Fatal("the answer reached the tab while it was cut off: the drop did not happen")
		}
		b.shot("desktop-06-reconnecting")
		wire.restore()
		b.until("the missed answer", assistantSaid(said)+" && "+linkState("connected"))
		if n := eval[int](b, countAssistant(said)); n != 1 {
			t.Errorf("the missed answer shows %d times, want once", n)
		}
		if n := eval[int](b, countAssistant("Hello! How can I help you?")); n != 1 {
			t.Errorf("an earlier answer shows %d times after the resume, want once", n)
		}
		b.shot("desktop-03-conversation")
		b.colorScheme("dark")
		b.shot("desktop-03-conversation-dark")
		b.colorScheme("")
	})

	step("an unanswered question times out", func(t *testing.T) {
		b.do("ask for a question", chromedp.SendKeys(chromedp.ID("composer-input"), "ask me something\n"))
		b.until("the question", countAssistant("What is your favourite colour?")+` === 2 && !document.getElementById("followup").hidden`)
		b.until("the timeout", userStatus("ask me something", "timeout", "Timed out")+` && document.getElementById("followup").hidden`)
	})

	var bobKey string
	step("the admin creates a client", func(t *testing.T) {
		b.do("open clients", chromedp.Click(chromedp.CSS(`.nav a[data-view="clients"]`)))
		b.until("the unlock form", `!document.getElementById("view-unlock").hidden`)
		b.shot("desktop-07-unlock")
		b.do("unlock", chromedp.SendKeys(chromedp.ID("admin-token"), "not-the-token\n"))
		b.until("the wrong token to be refused", `!document.getElementById("unlock-error").hidden`)
		b.do("unlock",
			clear("admin-token"),
			chromedp.SendKeys(chromedp.ID("admin-token"), g.AdminToken+"\n"))
		b.until("the client list", listReady("clients-body")+` && document.querySelector('#clients-body tr[data-client="alice"]') !== null`)
		b.do("new client",
			chromedp.Click(chromedp.ID("client-new")),
			chromedp.WaitVisible(chromedp.ID("client-id")),
			chromedp.SendKeys(chromedp.ID("client-id"), "bob"),
			chromedp.SendKeys(chromedp.ID("client-name"), "Bob's phone"),
			chromedp.SendKeys(chromedp.ID("client-aliases"), "bobby, phone-1"),
			chromedp.Click(chromedp.ID("client-submit")))
		b.until("the new key", `document.getElementById("key-dialog").open && document.getElementById("key-value").value !== ""`)
		bobKey = eval[string](b, `document.getElementById("key-value").value`)
		if !strings.HasPrefix(bobKey, "gwk_") {
			t.Errorf("the key dialog shows %q, not an access key", bobKey)
		}
		b.shot("desktop-08-new-client-key")
		b.do("copy and close", chromedp.Click(chromedp.ID("key-copy")), chromedp.Click(chromedp.ID("key-done")))
		b.until("the key to be gone", `!document.getElementById("key-dialog").open && document.getElementById("key-value").value === ""`)
		b.until("bob in the list", listReady("clients-body")+` && document.querySelector('#clients-body tr[data-client="bob"]') !== null`)
		if got := eval[string](b, `document.querySelector('#clients-body tr[data-client="bob"]').textContent`); !strings.Contains(got, "Bob's phone") || !strings.Contains(got, "phone-1") {
			t.Errorf("bob's row shows %q", got)
		}
		b.shot("desktop-09-clients")
	})

	step("the admin manages the blacklist", func(t *testing.T) {
		served := g.Do(t, http.MethodGet, "/v1/admin/blacklist", g.AdminToken, nil, nil) == http.StatusOK
		b.open("blacklist")
		if !served {
			t.Log("GET /v1/admin/blacklist is not served: the console must say so")
			b.until("the unavailable notice", `document.getElementById("blacklist-body").textContent.includes("not available")`)
			b.shot("desktop-10-blacklist")
			return
		}
		b.do("block a range",
			chromedp.Click(chromedp.ID("blacklist-new")),
			chromedp.WaitVisible(chromedp.ID("bl-cidr")),
			chromedp.SendKeys(chromedp.ID("bl-cidr"), "203.0.113.0/24"),
			chromedp.SendKeys(chromedp.ID("bl-reason"), "Scanning the login route"),
			chromedp.SetValue(chromedp.ID("bl-ttl"), "24h"),
			chromedp.Click(chromedp.ID("bl-submit")))
		b.until("the entry", listReady("blacklist-body")+` && document.querySelector('#blacklist-body tr[data-cidr="203.0.113.0/24"]') !== null`)
		row := eval[string](b, `document.querySelector('#blacklist-body tr[data-cidr="203.0.113.0/24"]').textContent`)
		for _, want := range []string{"Admin", "Scanning the login route"} {
			if !strings.Contains(row, want) {
				t.Errorf("the entry's row %q lacks %q", row, want)
			}
		}
		b.do("block a host",
			chromedp.Click(chromedp.ID("blacklist-new")),
			chromedp.WaitVisible(chromedp.ID("bl-cidr")),
			chromedp.SendKeys(chromedp.ID("bl-cidr"), "198.51.100.7"),
			chromedp.Click(chromedp.ID("bl-submit")))
		b.until("the second entry", listReady("blacklist-body")+` && document.querySelectorAll('#blacklist-body tbody tr').length === 2`)
		b.shot("desktop-10-blacklist")
		b.do("remove the host",
			chromedp.Click(chromedp.CSS(`#blacklist-body tbody tr:last-child button`)),
			chromedp.WaitVisible(chromedp.ID("confirm-submit")),
			chromedp.Click(chromedp.ID("confirm-submit")))
		b.until("the host to be gone", `document.querySelectorAll('#blacklist-body tbody tr').length === 1`)
		// Issue 17, item 6: blocking one's own address needs a second,
		// deliberate click.
		b.do("block one's own range",
			chromedp.Click(chromedp.ID("blacklist-new")),
			chromedp.WaitVisible(chromedp.ID("bl-cidr")),
			chromedp.SendKeys(chromedp.ID("bl-cidr"), "127.0.0.0/8"),
			chromedp.Click(chromedp.ID("bl-submit")))
		b.until("the warning", `document.getElementById("bl-error").textContent.includes("covers your own address") &&
			document.getElementById("bl-submit").textContent === "Block it anyway"`)
		b.shot("desktop-10-blacklist-own-address")
		b.do("think better of it", chromedp.Click(chromedp.CSS(`#blacklist-dialog [data-close]`)))
		b.until("nothing added", `!document.getElementById("blacklist-dialog").open && document.querySelectorAll('#blacklist-body tbody tr').length === 1`)
	})

	step("the admin manages protected intents", func(t *testing.T) {
		b.open("intents")
		b.until("the protected joke", `document.querySelector('#intents-body tr[data-pattern="joke.builtin:JokeIntent"]') !== null`)
		b.do("protect the time",
			chromedp.Click(chromedp.ID("intent-new")),
			chromedp.WaitVisible(chromedp.ID("intent-pattern")),
			chromedp.SendKeys(chromedp.ID("intent-pattern"), "time.builtin:*"),
			chromedp.SendKeys(chromedp.ID("intent-password"), "tick tock"),
			chromedp.SendKeys(chromedp.ID("intent-password2"), "tick tock"),
			chromedp.Click(chromedp.ID("intent-submit")))
		b.until("the new pattern", listReady("intents-body")+` && document.querySelector('#intents-body tr[data-pattern="time.builtin:*"]') !== null`)
		b.shot("desktop-11-protected-intents")
		b.do("unprotect it",
			chromedp.Click(chromedp.CSS(`#intents-body tr[data-pattern="time.builtin:*"] button[aria-label^="Stop protecting"]`)),
			chromedp.WaitVisible(chromedp.ID("confirm-submit")),
			chromedp.Click(chromedp.ID("confirm-submit")))
		b.until("the pattern to be gone", `document.querySelector('#intents-body tr[data-pattern="time.builtin:*"]') === null`)
	})

	step("the new client's key signs in", func(t *testing.T) {
		b.open("talk")
		b.until("alice still signed in", linkState("connected"))
		b.do("log out", chromedp.Click(chromedp.ID("logout")))
		b.until("the sign-in form, emptied", `!document.getElementById("talk-signin").hidden && document.querySelectorAll(".msg").length === 0`)
		b.do("sign in as bob",
			chromedp.WaitVisible(chromedp.ID("login-client")),
			clear("login-client"),
			chromedp.SendKeys(chromedp.ID("login-client"), "bobby"),
			chromedp.SendKeys(chromedp.ID("login-key"), bobKey))
		b.do("submit", chromedp.SendKeys(chromedp.ID("login-key"), "\n"))
		b.until("the link to come up", linkState("connected"))
		if who := eval[string](b, `document.getElementById("talk-who").textContent`); !strings.Contains(who, "Bob's phone") {
			t.Errorf("the header says %q, not Bob's phone", who)
		}
		b.do("say hello", chromedp.SendKeys(chromedp.ID("composer-input"), "hello\n"))
		b.until("the answer", assistantSaid("Hello! How can I help you?")+" && "+userStatus("hello", "handled", "Answered"))
		b.do("ask for a joke", chromedp.SendKeys(chromedp.ID("composer-input"), "tell me a joke\n"))
		b.until("the password prompt", `document.getElementById("password-dialog").open`)
		b.do("cancel", chromedp.Click(chromedp.CSS(`#password-dialog [data-close]`)))
		b.until("the refusal", userStatus("tell me a joke", "refused", "Refused"))
	})

	step("phone screens", func(t *testing.T) {
		b.do("phone viewport", chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		b.shot("phone-02-conversation")
		for _, v := range []string{"clients", "blacklist", "intents"} {
			b.open(v)
			b.shot("phone-03-" + v)
		}
		b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	})

	step("the admin rotates a key and deletes a client", func(t *testing.T) {
		// bob is still signed in on Talk: a new key ends his session.
		b.open("clients")
		b.do("rotate bob's key",
			chromedp.Click(chromedp.CSS(`#clients-body tr[data-client="bob"] button[aria-label^="Give bob"]`)),
			chromedp.WaitVisible(chromedp.ID("confirm-submit")),
			chromedp.Click(chromedp.ID("confirm-submit")))
		b.until("the new key", `document.getElementById("key-dialog").open && document.getElementById("key-value").value.startsWith("gwk_")`)
		if k := eval[string](b, `document.getElementById("key-value").value`); k == bobKey {
			t.Error("the rotated key is the old one")
		}
		b.do("close", chromedp.Click(chromedp.ID("key-done")))
		b.open("talk")
		b.until("bob's session to end", `!document.getElementById("talk-signin").hidden &&
			document.getElementById("login-error").textContent.includes("ended")`)
		b.open("clients")
		b.do("delete bob",
			chromedp.Click(chromedp.CSS(`#clients-body tr[data-client="bob"] button[aria-label="Delete bob"]`)),
			chromedp.WaitVisible(chromedp.ID("confirm-submit")),
			chromedp.Click(chromedp.ID("confirm-submit")))
		b.until("bob to be gone", `document.querySelector('#clients-body tr[data-client="bob"]') === null &&
			document.querySelector('#clients-body tr[data-client="alice"]') !== null`)
		if st := g.Do(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "bob", "access_key": bobKey}, nil); st != http.StatusUnauthorized {
			t.Errorf("a deleted client signs in: status %d", st)
		}
	})

	step("rename", func(t *testing.T) {
		b.do("rename alice", chromedp.Click(chromedp.CSS(`#clients-body tr[data-client="alice"] button[aria-label="Rename alice"]`)))
		b.until("the rename dialog", `document.getElementById("rename-dialog").open`)
		b.do("rename",
			clear("rename-name"),
			chromedp.SendKeys(chromedp.ID("rename-name"), "Kitchen speaker"),
			chromedp.Click(chromedp.ID("rename-submit")))
		b.until("the new name", `document.querySelector('#clients-body tr[data-client="alice"]').textContent.includes("Kitchen speaker")`)
	})

	step("phone sign-in", func(t *testing.T) {
		b.do("phone viewport", chromedp.EmulateViewport(phoneW, phoneH, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		b.open("talk")
		b.until("the sign-in form", `!document.getElementById("talk-signin").hidden`)
		b.shot("phone-01-sign-in")
		b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	})

	step("no secrets kept, no third parties, no CSP violations", func(t *testing.T) {
		if n := eval[int](b, `localStorage.length + sessionStorage.length`); n != 0 {
			t.Errorf("the console stored %d items in web storage", n)
		}
		if c := eval[string](b, `document.cookie`); c != "" {
			t.Errorf("document.cookie is %q: the session cookie must be HttpOnly", c)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, u := range b.requests {
			if !strings.HasPrefix(u, site+"/") && !strings.HasPrefix(u, "data:") {
				t.Errorf("request to another origin: %s", u)
			}
		}
		if len(b.requests) == 0 {
			t.Error("no request was seen: the network listener is broken")
		}
		for _, m := range b.console {
			switch {
			case m.IsException():
				t.Errorf("uncaught exception: %s", m.Text)
			case strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to"):
				t.Errorf("CSP violation: %s", m.Text)
			}
		}
	})
}

// TestConsoleAssistantUnavailable cuts the gateway's link to the assistant's
// messagebus while a client is signed in: the console says the assistant is
// unavailable and that the utterance was not handled, and recovers once the
// link is back.
func TestConsoleAssistantUnavailable(t *testing.T) {
	bus, err := messagebus.New(messagebus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bus.Handler())
	t.Cleanup(func() { srv.Close(); bus.Close() })
	busLink := newLink(t, srv.Listener.Addr().String())
	g := gatewaytest.Start(t, map[string]string{
		"BUS_URL":           "ws://" + busLink.ln.Addr().String() + messagebus.Route,
		"UTTERANCE_TIMEOUT": "3s",
	})
	key := g.CreateClient(t, "dana")
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("sign in",
		chromedp.Navigate(g.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-client")),
		chromedp.SendKeys(chromedp.ID("login-client"), "dana"),
		chromedp.SendKeys(chromedp.ID("login-key"), key+"\n"))
	b.until("the link to come up", linkState("connected"))

	busLink.cut()
	waitReady(t, g, http.StatusServiceUnavailable)
	b.do("say hello", chromedp.SendKeys(chromedp.ID("composer-input"), "hello\n"))
	b.until("the assistant to be unavailable", linkState("unavailable")+` && (`+
		userStatus("hello", "unsent", "assistant is unavailable")+` || `+userStatus("hello", "error", "Failed")+`)`)
	if got := eval[string](b, `document.getElementById("link-text").textContent`); got != "Assistant unavailable" {
		t.Errorf("link pill says %q", got)
	}
	b.shot("desktop-12-assistant-unavailable")

	busLink.restore()
	waitReady(t, g, http.StatusOK)
	b.do("say it again", chromedp.SendKeys(chromedp.ID("composer-input"), "hello again\n"))
	// This bus has no skills: the utterance is accepted, then times out.
	b.until("the link to come back", linkState("connected")+" && "+userStatus("hello again", "timeout", "Timed out"))
}

// TestConsoleBuses: the admin's view of the assistants' buses lists every
// configured bus with its state, read-only, and follows one going down.
func TestConsoleBuses(t *testing.T) {
	var urls []string
	var stops []func()
	for range 2 {
		bus, err := messagebus.New(messagebus.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(bus.Handler())
		stop := sync.OnceFunc(func() { srv.Close(); bus.Close() })
		t.Cleanup(stop)
		urls, stops = append(urls, "ws://"+srv.Listener.Addr().String()+messagebus.Route), append(stops, stop)
	}
	g := gatewaytest.Start(t, map[string]string{"BUS_URL": strings.Join(urls, ",")})
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("open the buses", chromedp.Navigate(g.URL+"/#/buses"))
	b.until("the unlock form", `!document.getElementById("view-unlock").hidden`)
	b.do("unlock", chromedp.SendKeys(chromedp.ID("admin-token"), g.AdminToken+"\n"))
	b.until("the list of buses", listReady("buses-body"))
	row := func(bus, state string) string {
		return fmt.Sprintf(`(r => r !== null && r.textContent.includes(%s) && r.querySelector(".badge").textContent === %s)(document.querySelector('#buses-body tr[data-bus=%s]'))`,
			js(urlOf(urls, bus)), js(state), js(bus))
	}
	b.until("both buses up", row("1", "Up")+" && "+row("2", "Up"))
	if got := eval[string](b, `document.querySelector("#buses-body .count").textContent`); got != "2 of 2 up" {
		t.Errorf("count %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#view-buses button:not([data-lock]):not(#buses-refresh), #buses-body input").length`); n != 0 {
		t.Errorf("the view of buses has %d controls: it is read-only", n)
	}
	b.shot("desktop-15-buses")

	stops[1]()
	waitReady(t, g, http.StatusOK) // one bus is enough
	b.until("bus 2 to show down", `(document.getElementById("buses-refresh").click(), true) && `+row("2", "Down")+" && "+row("1", "Up"))
	if got := eval[string](b, `document.querySelector("#buses-body .count").textContent`); got != "1 of 2 up" {
		t.Errorf("count %q", got)
	}
	b.shot("desktop-16-bus-down")
}

// urlOf is the URL of bus label ("1", "2") in urls.
func urlOf(urls []string, label string) string {
	i := int(label[0] - '1')
	return urls[i]
}

// waitReady waits until the gateway's /readyz answers status.
func waitReady(t *testing.T, g *gatewaytest.Gateway, status int) {
	t.Helper()
	gatewaytest.EventuallyWithin(t, stepTimeout, fmt.Sprintf("/readyz to answer %d", status), func() bool {
		resp, err := http.Get(g.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == status
	})
}

// TestNoInlineCode checks the files as served: the console runs under a
// strict Content-Security-Policy (no inline scripts, styles or handlers),
// asks no third party for anything, and keeps no token in web storage.
func TestNoInlineCode(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script\b[^>]*>\s*[^<\s]`)
	scriptSrc := regexp.MustCompile(`<script\b[^>]*\bsrc=`)
	styleAttr := regexp.MustCompile(`\sstyle\s*=`)
	handlerAttr := regexp.MustCompile(`\son[a-z]+\s*=\s*["']`)
	remote := regexp.MustCompile(`(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	checked := 0
	err := fs.WalkDir(os.DirFS("."), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ext := filepath.Ext(path)
		if path != "index.html" && !strings.HasPrefix(path, "assets/") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(raw)
		checked++
		// The SVG namespace is a name, not a request.
		src = strings.ReplaceAll(src, "http://www.w3.org/2000/svg", "")
		if m := remote.FindString(src); m != "" {
			t.Errorf("%s refers to another origin: %s", path, m)
		}
		switch ext {
		case ".html":
			if inlineScript.MatchString(src) {
				t.Errorf("%s has an inline script", path)
			}
			if !scriptSrc.MatchString(src) {
				t.Errorf("%s loads no script", path)
			}
			if strings.Contains(src, "<style") || styleAttr.MatchString(src) {
				t.Errorf("%s has an inline style", path)
			}
			if handlerAttr.MatchString(src) {
				t.Errorf("%s has an inline event handler", path)
			}
		case ".js":
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "sessionStorage", "indexedDB", "document.cookie", ".style."} {
				if strings.Contains(src, bad) {
					t.Errorf("%s uses %s", path, bad)
				}
			}
		case ".css":
			if strings.Contains(src, "@import") {
				t.Errorf("%s imports another stylesheet", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Errorf("checked %d files, want the page, its scripts, its stylesheet and its icon", checked)
	}
}

// TestConsoleFollowsNewMessages: with the reader at the bottom, the
// conversation follows the newest message and its status line, a dozen
// messages on (issue 17, item 4: it stopped after about four, as status
// lines grew below the check); a reader who scrolled up is left there.
func TestConsoleFollowsNewMessages(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	key := g.CreateClient(t, "erin")
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("sign in",
		chromedp.Navigate(g.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-client")),
		chromedp.SendKeys(chromedp.ID("login-client"), "erin"),
		chromedp.SendKeys(chromedp.ID("login-key"), key+"\n"))
	b.until("the link to come up", linkState("connected"))
	const atBottom = `(c => c.scrollHeight - c.scrollTop - c.clientHeight < 2)(document.getElementById("conversation"))`
	for i := range 12 {
		text := fmt.Sprintf("say message number %d", i)
		b.do("say "+text, chromedp.SendKeys(chromedp.ID("composer-input"), text+"\n"))
		b.until(text+" answered", userStatus(text, "handled", "Answered")+" && "+assistantSaid(fmt.Sprintf("message number %d", i)))
		// Scrolling may be smooth: wait for it to arrive.
		b.until(fmt.Sprintf("the conversation to follow message %d", i), atBottom)
	}
	b.shot("desktop-13-follows-new-messages")

	// Scrolled up to read: the next message does not pull the reader down.
	b.do("scroll up", chromedp.Evaluate[chromedp.Void](`document.getElementById("conversation").scrollTop = 0`))
	b.until("the scroll to settle", `document.getElementById("conversation").scrollTop === 0`)
	b.do("say one more", chromedp.SendKeys(chromedp.ID("composer-input"), "say one more\n"))
	b.until("one more answered", userStatus("say one more", "handled", "Answered"))
	if top := eval[float64](b, `document.getElementById("conversation").scrollTop`); top != 0 {
		t.Errorf("a reader scrolled up was moved to %v", top)
	}
}

// TestConsoleMarksOtherSessions: speech to another session of the same
// client (another tab, a device) shares the stream; the console marks it as
// such and never takes it for its own answer (issue 17, item 9).
func TestConsoleMarksOtherSessions(t *testing.T) {
	g := gatewaytest.Start(t, nil)
	key := g.CreateClient(t, "fern")
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("sign in",
		chromedp.Navigate(g.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-client")),
		chromedp.SendKeys(chromedp.ID("login-client"), "fern"),
		chromedp.SendKeys(chromedp.ID("login-key"), key+"\n"))
	b.until("the link to come up", linkState("connected"))

	var other struct {
		Token string `json:"token"`
	}
	if st := g.Do(t, http.MethodPost, "/v1/sessions", "", map[string]string{"client_id": "fern", "access_key": key}, &other); st != http.StatusCreated {
		t.Fatalf("second login: %d", st)
	}
	if st := g.Do(t, http.MethodPost, "/v1/utterances?wait=10s", other.Token, map[string]string{"utterance": "say banana bread"}, nil); st != http.StatusOK {
		t.Fatalf("the other session's utterance: %d", st)
	}
	b.do("say own", chromedp.SendKeys(chromedp.ID("composer-input"), "say apple pie\n"))
	b.until("own answer", userStatus("say apple pie", "handled", "Answered")+" && "+assistantSaid("apple pie"))
	marked := func(text string) bool {
		return eval[bool](b, fmt.Sprintf(`[...document.querySelectorAll(".msg.assistant")].some(m =>
			m.querySelector(".bubble").textContent.includes(%s) && m.classList.contains("other") &&
			m.querySelector(".tag.other")?.textContent === "To another session of this client")`, js(text)))
	}
	if !eval[bool](b, assistantSaid("banana bread")) || !marked("banana bread") {
		t.Error("the other session's answer is not shown marked")
	}
	if marked("apple pie") {
		t.Error("this session's own answer is marked as another's")
	}
	b.shot("desktop-14-other-session")
}

// TestConsoleBlockedBrowser: a browser whose address is blocked sees a page
// saying so and what to do, not raw JSON (issue 17, item 7).
func TestConsoleBlockedBrowser(t *testing.T) {
	g := gatewaytest.Start(t, map[string]string{"IP_BLACKLIST": "127.0.0.1/32", "IP_ALLOWLIST": ""})
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("open the console", chromedp.Navigate(g.URL+"/"))
	b.until("the blocked page", `document.getElementById("blocked-detail") !== null`)
	text := b.pageText()
	if !strings.Contains(text, "This address is blocked") || !strings.Contains(text, "only its admin can lift") || strings.Contains(text, `"type"`) {
		t.Errorf("the page says:\n%s", text)
	}
	b.shot("desktop-15-blocked")
}

// TestConsoleKeepsItsSession: a reload resumes the session from the
// HttpOnly cookie, and the token is refreshed before it expires, so a user
// stays signed in past the first token's life without the token ever being
// in web storage; signing out ends it for the next reload too (issue 17,
// item 5).
func TestConsoleKeepsItsSession(t *testing.T) {
	// A short token life, so that the session outlives several tokens
	// within one test step.
	g := gatewaytest.Start(t, map[string]string{"TOKEN_TTL": "5s"})
	key := g.CreateClient(t, "gwen")
	b := newBrowser(t, t.ArtifactDir())
	b.do("desktop viewport", chromedp.EmulateViewport(desktopW, desktopH))
	b.do("sign in",
		chromedp.Navigate(g.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-client")),
		chromedp.SendKeys(chromedp.ID("login-client"), "gwen"),
		chromedp.SendKeys(chromedp.ID("login-key"), key+"\n"))
	b.until("the link to come up", linkState("connected"))

	b.do("reload", chromedp.Reload())
	b.until("the session to resume", `!document.getElementById("talk-chat").hidden &&
		document.getElementById("talk-signin").hidden &&
		document.getElementById("talk-who").textContent.includes("gwen")`)
	b.until("the link to come up again", linkState("connected"))
	b.do("say hello", chromedp.SendKeys(chromedp.ID("composer-input"), "hello\n"))
	b.until("the answer", assistantSaid("Hello! How can I help you?")+" && "+userStatus("hello", "handled", "Answered"))

	// Three refreshes after the resume: the session has outlived the token
	// it resumed with, and the one after that.
	refreshes := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		n := 0
		for _, u := range b.requests {
			if strings.HasSuffix(u, "/v1/sessions/current/refresh") {
				n++
			}
		}
		return n
	}
	base := refreshes()
	for want := base + 1; want <= base+3; want++ {
		gatewaytest.Eventually(t, "a refresh", func() bool { return refreshes() >= want })
		b.until("the session to stay signed in", `document.getElementById("talk-signin").hidden`)
	}
	b.until("the link to come up after the refreshes", linkState("connected"))
	b.do("say more", chromedp.SendKeys(chromedp.ID("composer-input"), "say still here\n"))
	b.until("the answer after the refreshes", assistantSaid("still here")+" && "+userStatus("say still here", "handled", "Answered"))
	if n := eval[int](b, `localStorage.length + sessionStorage.length`); n != 0 {
		t.Errorf("the console stored %d items in web storage", n)
	}
	if strings.Contains(g.Logs(), key) {
		t.Error("the access key reached the logs")
	}

	// Signed out, a reload shows the sign-in form.
	b.do("sign out", chromedp.Click(chromedp.ID("logout")))
	b.until("the sign-in form", `!document.getElementById("talk-signin").hidden`)
	b.do("reload after signing out", chromedp.Reload())
	b.until("the sign-in form after the reload", `document.getElementById("talk-signin").getAttribute("aria-busy") === "false"`)
	if !eval[bool](b, `!document.getElementById("talk-signin").hidden && document.getElementById("talk-chat").hidden`) {
		t.Error("a signed-out session was resumed on reload")
	}
}
