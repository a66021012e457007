// Command bsoracle runs the official Battlesnake rules engine
// (github.com/BattlesnakeOfficial/rules v1.2.3) as a reference for the Python
// port. It is a test tool: every subcommand reads plain inputs and prints JSON,
// so the Python tests can compare the two engines line by line.
//
// Subcommands:
//
//	bsoracle init   JSON lines in, one starting board per line out
//	bsoracle step   JSON lines in, one played turn per line out
//	bsoracle bench  plays random-safe games on one core and prints the speed
//	bsoracle rand   prints outputs of Go's math/rand for a list of operations
//
// See README.md next to this file for the exact line formats.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "init":
		err = serveLines(os.Stdin, os.Stdout, initLine)
	case "step":
		err = serveLines(os.Stdin, os.Stdout, stepLine)
	case "bench":
		err = benchMain(os.Args[2:], os.Stdout)
	case "rand":
		err = randMain(os.Args[2:], os.Stdin, os.Stdout)
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bsoracle:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bsoracle init|step|rand < lines.jsonl")
	fmt.Fprintln(os.Stderr, "       bsoracle bench --games N --snakes 4 --width 11 --height 11 --seconds S")
	fmt.Fprintln(os.Stderr, "       bsoracle rand --seed N --ops int63x3,intn:100x5,shuffle:10")
}

// serveLines answers every non-empty input line with exactly one output line.
// A line that fails produces {"error": "..."} so the caller's line numbering
// never shifts; only I/O failures stop the loop.
func serveLines(in io.Reader, out io.Writer, handle func([]byte) (any, error)) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 0, 1<<20), 64<<20)
	writer := bufio.NewWriter(out)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(trimSpace(line)) == 0 {
			continue
		}
		result, err := handle(line)
		if err != nil {
			result = map[string]string{"error": err.Error()}
		}
		if err := encoder.Encode(result); err != nil {
			return err
		}
	}
	return scanner.Err()
}

func trimSpace(b []byte) []byte {
	start, end := 0, len(b)
	for start < end && (b[start] == ' ' || b[start] == '\t' || b[start] == '\r' || b[start] == '\n') {
		start++
	}
	for end > start && (b[end-1] == ' ' || b[end-1] == '\t' || b[end-1] == '\r' || b[end-1] == '\n') {
		end--
	}
	return b[start:end]
}
