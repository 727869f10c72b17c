package middleware

import "net/http"

// BodyLimit caps request bodies at n bytes; a handler reading past it gets
// an *http.MaxBytesError, which the JSON decoder turns into a 413.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}
