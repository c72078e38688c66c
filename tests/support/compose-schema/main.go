// compose-check loads a compose file the way `docker compose --env-file F
// --profile P config` does, with compose-go, the library Docker Compose is
// built on: the file is validated against the Compose Specification JSON
// schema embedded in compose-go (schema/compose-spec.json), `${VARIABLES}`
// are interpolated from the env files only (never from this process's
// environment, so a developer's shell cannot change the result), and the
// model is normalised and checked for consistency (every network, volume and
// depends_on that a service names exists). It prints the project as JSON;
// services outside the active profiles are listed under "disabled_services".
//
// Used by tests/support/compose-schema.ts; no Docker engine is involved.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	var envFiles, profiles repeated
	flag.Var(&envFiles, "env-file", "an env file to interpolate from (repeatable; later files win)")
	flag.Var(&profiles, "profile", "a profile to enable (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: compose-check [--env-file FILE]... [--profile NAME]... COMPOSE_FILE")
	}
	composeFile, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fail(err.Error())
	}

	settings := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	}
	// Without --env-file compose-go would read a .env beside the file: a
	// developer's local .env must not change what the tests see.
	if len(envFiles) > 0 {
		settings = append(settings, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions([]string{composeFile}, settings...)
	if err != nil {
		fail(err.Error())
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err.Error())
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(out))
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}
