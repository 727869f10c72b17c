//go:build ignore

// centrifugo-hop measures Centrifugo's publish → SSE hop sequentially, the way
// gatewaybench measures POST → speak: one subscriber on uni_sse, one
// publisher posting to the HTTP API and waiting for its publication. It is
// the reference figure of docs/PERFORMANCE.md ("Against Centrifugo, in one
// run"); it is not part of the gateway (a build tag keeps it out of the
// module's packages). Run it against a Centrifugo started with uni_sse on:
//
//	go install github.com/centrifugal/centrifugo/v6@v6.9.1
//	centrifugo genconfig -c config.json   # then set "uni_sse": {"enabled": true}
//	centrifugo -c config.json &
//	go run tools/centrifugo-hop/main.go -config config.json -url http://127.0.0.1:8000
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "centrifugo-hop: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	base := flag.String("url", "http://127.0.0.1:18000", "centrifugo")
	cfgPath := flag.String("config", "config.json", "the config file Centrifugo runs with (its token and API keys)")
	n := flag.Int("n", 5000, "publications")
	flag.Parse()
	var cfg struct {
		Client struct {
			Token struct {
				Key string `json:"hmac_secret_key"`
			} `json:"token"`
		} `json:"client"`
		API struct {
			Key string `json:"key"`
		} `json:"http_api"`
	}
	raw, _ := os.ReadFile(*cfgPath)
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fail("read %s: %v", *cfgPath, err)
	}
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(fmt.Sprintf(`{"sub":"u1","channels":["bench"],"exp":%d}`, time.Now().Add(time.Hour).Unix())))
	m := hmac.New(sha256.New, []byte(cfg.Client.Token.Key))
	m.Write([]byte(head + "." + body))
	tok := head + "." + body + "." + enc.EncodeToString(m.Sum(nil))
	connect, _ := json.Marshal(map[string]string{"token": tok})
	resp, err := http.Get(*base + "/connection/uni_sse?cf_connect=" + url.QueryEscape(string(connect)))
	if err != nil {
		fail("subscribe: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		fail("subscribe: %s", resp.Status)
	}
	got := make(chan int, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var push struct {
				Pub *struct {
					Data struct {
						I int `json:"i"`
					} `json:"data"`
				} `json:"pub"`
			}
			if json.Unmarshal([]byte(d), &push) == nil && push.Pub != nil {
				got <- push.Pub.Data.I
			}
		}
		close(got)
	}()
	time.Sleep(200 * time.Millisecond)
	client := &http.Client{}
	var post, hop []time.Duration
	for i := range *n + 500 {
		b, _ := json.Marshal(map[string]any{"channel": "bench", "data": map[string]int{"i": i}})
		req, _ := http.NewRequest(http.MethodPost, *base+"/api/publish", bytes.NewReader(b))
		req.Header.Set("X-API-Key", cfg.API.Key)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		r, err := client.Do(req)
		if err != nil {
			fail("publish: %v", err)
		}
		var sink bytes.Buffer
		sink.ReadFrom(r.Body)
		r.Body.Close()
		t1 := time.Now()
		for v := range got {
			if v == i {
				break
			}
		}
		t2 := time.Now()
		if i >= 500 { // warm-up
			post = append(post, t1.Sub(t0))
			hop = append(hop, t2.Sub(t0))
		}
	}
	q := func(d []time.Duration, p float64) string {
		s := slices.Clone(d)
		slices.Sort(s)
		return fmt.Sprintf("%.3f", float64(s[int(float64(len(s)-1)*p)])/1e6)
	}
	fmt.Printf("centrifugo, %d sequential publications (ms)  p50   p90   p99\n", len(hop))
	fmt.Printf("  POST /api/publish → 200                 %s %s %s\n", q(post, .5), q(post, .9), q(post, .99))
	fmt.Printf("  POST → publication on uni_sse           %s %s %s\n", q(hop, .5), q(hop, .9), q(hop, .99))
}
