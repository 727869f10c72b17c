package middleware

import (
	"net/http"
	"slices"
	"strings"
)

// CORS lets the listed origins call the API from a browser page of theirs.
// No credentials are allowed across origins: the session cookie stays
// same-site, and another origin authenticates with a Bearer token (and a
// stream ticket for EventSource). With no origin listed it does nothing.
func CORS(origins []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(origins) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || !slices.Contains(origins, origin) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, Location")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", strings.Join([]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}, ", "))
				h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Get("Access-Control-Request-Headers")))
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// corsHeaders are the request headers a page of an allowed origin may send.
const corsHeaders = "Authorization, Content-Type, Last-Event-ID, X-Intent-Password"

// stainlessPrefix starts the headers OpenAI's JavaScript SDK adds to every
// request (x-stainless-os, -lang, -retry-count, ...): a chat page that uses
// it in the browser asks for them in its preflight.
const stainlessPrefix = "x-stainless-"

// allowHeaders is corsHeaders, plus the OpenAI SDK's own headers the
// preflight asks for (at most 16 names, each a plain token).
func allowHeaders(requested string) string {
	out := corsHeaders
	if requested == "" || len(requested) > 1024 {
		return out
	}
	for i, name := range strings.Split(requested, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if i >= 16 || !strings.HasPrefix(name, stainlessPrefix) || strings.IndexFunc(name, notToken) >= 0 {
			continue
		}
		out += ", " + name
	}
	return out
}

func notToken(r rune) bool {
	return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
}
