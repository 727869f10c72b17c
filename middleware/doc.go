// Package middleware holds the gateway's HTTP middleware, each a plain
// func(http.Handler) http.Handler in a file of its own, applied in this order
// (see handlers.Routes): request id, access log, recover, client address,
// blacklist, security headers, allowed hosts, CORS, body limit and body
// timeout, authentication.
//
// The package shares chi's name; chi's own middleware is imported as chimw.
package middleware
