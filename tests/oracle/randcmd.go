package main

// rand: outputs of rand.New(rand.NewSource(seed)) for a list of operations,
// the reference for the Python port in trainer/engine/gorand.py.
//
// Flag form prints one JSON object:
//
//	bsoracle rand --seed 42 --ops int63x3,intn:100x5,shuffle:10
//
// Line form (no --seed) reads JSON lines {"seed": N, "ops": [OP, ...]} with
// OP = {"op": NAME, "n": N, "count": K} and writes one line per input:
// {"seed": N, "results": [[...], ...]}, one list per op, ops applied in order
// to one generator. NAME is int63, uint64, uint32, int31 (no n), int31n,
// int63n, intn (K draws below n), shuffle (the permutation of 0..n-1 left
// by Shuffle(n, swap); count is ignored), or skip (K Uint64 draws, none
// reported: to reach deep into a stream cheaply).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
)

type randOp struct {
	Op    string `json:"op"`
	N     int64  `json:"n"`
	Count int    `json:"count"`
}

type randRequest struct {
	Seed int64    `json:"seed"`
	Ops  []randOp `json:"ops"`
}

type randResult struct {
	Seed    int64   `json:"seed"`
	Results [][]any `json:"results"`
}

func randMain(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("rand", flag.ContinueOnError)
	seed := fs.String("seed", "", "seed (int64); without it, JSON lines are read from stdin")
	ops := fs.String("ops", "int63x1", "comma-separated NAME[:n][xK]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seed == "" {
		return serveLines(in, out, func(line []byte) (any, error) {
			var req randRequest
			if err := json.Unmarshal(line, &req); err != nil {
				return nil, err
			}
			return runRandOps(req)
		})
	}
	s, err := strconv.ParseInt(*seed, 10, 64)
	if err != nil {
		return err
	}
	parsed, err := parseOps(*ops)
	if err != nil {
		return err
	}
	result, err := runRandOps(randRequest{Seed: s, Ops: parsed})
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(result)
}

func parseOps(spec string) ([]randOp, error) {
	var ops []randOp
	for _, item := range strings.Split(spec, ",") {
		op := randOp{Count: 1}
		if name, count, ok := strings.Cut(item, "x"); ok {
			c, err := strconv.Atoi(count)
			if err != nil {
				return nil, fmt.Errorf("bad count in %q", item)
			}
			op.Count, item = c, name
		}
		if name, n, ok := strings.Cut(item, ":"); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad n in %q", item)
			}
			op.N, item = v, name
		}
		op.Op = item
		ops = append(ops, op)
	}
	return ops, nil
}

func runRandOps(req randRequest) (randResult, error) {
	r := rand.New(rand.NewSource(req.Seed))
	res := randResult{Seed: req.Seed, Results: make([][]any, 0, len(req.Ops))}
	for _, op := range req.Ops {
		needsN := op.Op == "int31n" || op.Op == "int63n" || op.Op == "intn" || op.Op == "shuffle"
		if needsN && (op.N <= 0 && op.Op != "shuffle" || op.N < 0) {
			return res, fmt.Errorf("op %s needs n > 0", op.Op)
		}
		if op.Op == "int31n" && op.N > 1<<31-1 {
			return res, errors.New("int31n needs n < 2^31")
		}
		var vals []any
		if op.Op == "shuffle" {
			vals = make([]any, 0, op.N)
			perm := make([]int, op.N)
			for i := range perm {
				perm[i] = i
			}
			r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			for _, v := range perm {
				vals = append(vals, v)
			}
			res.Results = append(res.Results, vals)
			continue
		}
		vals = make([]any, 0, op.Count)
		if op.Op == "skip" {
			for k := 0; k < op.Count; k++ {
				r.Uint64()
			}
			res.Results = append(res.Results, vals)
			continue
		}
		for k := 0; k < op.Count; k++ {
			switch op.Op {
			case "int63":
				vals = append(vals, r.Int63())
			case "uint64":
				vals = append(vals, r.Uint64())
			case "uint32":
				vals = append(vals, r.Uint32())
			case "int31":
				vals = append(vals, r.Int31())
			case "int31n":
				vals = append(vals, r.Int31n(int32(op.N)))
			case "int63n":
				vals = append(vals, r.Int63n(op.N))
			case "intn":
				vals = append(vals, r.Intn(int(op.N)))
			default:
				return res, fmt.Errorf("unknown op %q", op.Op)
			}
		}
		res.Results = append(res.Results, vals)
	}
	return res, nil
}
