// Package settings reads a command's configuration struct from its
// environment variables and the flags of the same names, the way the
// gateway and the satellite both do: each field's tags give its variable
// (`env`), default (`envDefault`) and meaning (`help`); `noflag:"true"`
// keeps a field (a secret) out of the command line. A flag that is set wins
// over its variable; caarlos0/env parses both.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Setting is one field of a configuration struct.
type Setting struct {
	Field   string // the Go field name
	Env     string // the variable, without the prefix
	Flag    string // the flag: Env in lower case with dashes
	Default string
	Help    string
	NoFlag  bool
}

// Of lists the settings of the configuration struct T, in field order.
func Of[T any]() []Setting {
	t := reflect.TypeFor[T]()
	out := make([]Setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		out = append(out, Setting{
			Field:   f.Name,
			Env:     name,
			Flag:    strings.ReplaceAll(strings.ToLower(name), "_", "-"),
			Default: f.Tag.Get("envDefault"),
			Help:    f.Tag.Get("help"),
			NoFlag:  f.Tag.Get("noflag") == "true",
		})
	}
	return out
}

// Flags registers on fs one string flag for each setting of T that may be
// given on the command line, and returns their values by flag name for
// Load.
func Flags[T any](fs *flag.FlagSet, prefix string) map[string]*string {
	vals := make(map[string]*string)
	for _, s := range Of[T]() {
		if s.NoFlag {
			continue
		}
		usage := fmt.Sprintf("%s (env %s%s", s.Help, prefix, s.Env)
		if s.Default != "" {
			usage += ", default " + s.Default
		}
		vals[s.Flag] = fs.String(s.Flag, "", usage+")")
	}
	return vals
}

// Load parses T from getenv and from the flags of vals that were set on fs
// (which must be parsed). Its errors name the settings that failed and
// never their values, which may be secrets.
func Load[T any](prefix string, getenv func(string) string, fs *flag.FlagSet, vals map[string]*string) (T, error) {
	list := Of[T]()
	environ := make(map[string]string)
	for _, s := range list {
		if v := getenv(prefix + s.Env); v != "" {
			environ[prefix+s.Env] = v
		}
	}
	envOf := make(map[string]string, len(list))
	for _, s := range list {
		envOf[s.Flag] = s.Env
	}
	fs.Visit(func(f *flag.Flag) {
		if v, ok := vals[f.Name]; ok {
			environ[prefix+envOf[f.Name]] = *v
		}
	})
	var cfg T
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ, Prefix: prefix}); err != nil {
		var zero T
		return zero, fmt.Errorf("configuration: %w", scrub(err, prefix, list))
	}
	return cfg, nil
}

// scrub keeps the names of the settings that failed to parse and drops
// their values. env's other errors name variables, not values.
func scrub(err error, prefix string, list []Setting) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := pe.Name
			for _, s := range list {
				if s.Field == pe.Name {
					name = s.Env
				}
			}
			msgs = append(msgs, fmt.Sprintf("%s%s: cannot parse as %s", prefix, name, pe.Type))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}
