// Package web is the browser console, embedded in the binary: plain HTML,
// CSS and JavaScript modules, no build step and no server logic.
package web

import (
	"embed"
	"net/http"
)

//go:embed index.html assets
var files embed.FS

// Handler serves the console: index.html at / and the files under /assets/.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
