package main

// bench: the official engine's speed, driven the way the CLI drives it.
//
// Each game: maps.SetupBoard + ruleset.Execute(state, nil) (the CLI's
// initializeBoardFromArgs), then turns of PreUpdateBoard + Execute +
// PostUpdateBoard + Turn++ (createNextBoardState) until Execute reports game
// over, exactly like the CLI's loop. The turn whose Execute reports game over
// changes nothing and is not counted; its cost is in the time.
//
// Random-safe move, per living snake, per turn: of up, down, left, right
// (in that order) keep the moves whose new head is on the board and not on a
// segment of any living snake, where a snake's last segment does not count
// when it differs from the one before it (that tail leaves its cell this turn,
// eaten food or not; a doubled tail stays). Pick one of the kept moves with
// Intn(len(kept)) from a math/rand generator seeded with --seed; when none is
// kept, pick Intn(4) of all four. Heads that may meet are not avoided.
// Move choice is included in the timing, as the CLI's HTTP round trip would be.
//
// Settings are the CLI's flag defaults: standard ruleset and map,
// foodSpawnChance 15, minimumFood 1, hazardDamagePerTurn 14,
// shrinkEveryNTurns 25; game g uses engine seed --seed + g.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"time"

	"github.com/BattlesnakeOfficial/rules"
	"github.com/BattlesnakeOfficial/rules/maps"
)

type benchResult struct {
	EnvStepsPerSec float64 `json:"env_steps_per_sec"`
	Games          int     `json:"games"`
	Turns          int     `json:"turns"`
	Seconds        float64 `json:"seconds"`
	Snakes         int     `json:"snakes"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	GoMaxProcs     int     `json:"gomaxprocs"`
	Ruleset        string  `json:"ruleset"`
	Map            string  `json:"map"`
}

func benchMain(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	games := fs.Int("games", 1000, "stop after this many finished games")
	nSnakes := fs.Int("snakes", 4, "snakes per game")
	width := fs.Int("width", 11, "board width")
	height := fs.Int("height", 11, "board height")
	seconds := fs.Float64("seconds", 10, "stop after the game running when this many seconds have passed")
	seed := fs.Int64("seed", 1, "first engine seed (game g uses seed+g) and the move generator's seed")
	rulesetName := fs.String("ruleset", rules.GameTypeStandard, "ruleset name")
	mapName := fs.String("map", "standard", "map id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *games < 1 || *nSnakes < 1 {
		return errors.New("--games and --snakes must be at least 1")
	}
	gameMap, err := maps.GetMap(*mapName)
	if err != nil {
		return err
	}
	params := map[string]string{
		rules.ParamFoodSpawnChance:     "15",
		rules.ParamMinimumFood:         "1",
		rules.ParamHazardDamagePerTurn: "14",
		rules.ParamShrinkEveryNTurns:   "25",
	}
	ids := make([]string, *nSnakes)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d", i)
	}
	mover := newSafeMover(rand.New(rand.NewSource(*seed)), *width, *height)
	deadline := time.Duration(*seconds * float64(time.Second))

	start := time.Now()
	played, turns := 0, 0
	for played < *games && time.Since(start) < deadline {
		gameSeed := *seed + int64(played)
		if gameSeed == 0 {
			gameSeed = -1 // 0 would mean the global generator
		}
		ruleset := rules.NewRulesetBuilder().
			WithSeed(gameSeed).
			WithParams(params).
			WithSolo(len(ids) < 2).
			NamedRuleset(*rulesetName)
		state, err := maps.SetupBoard(gameMap.ID(), ruleset.Settings(), *width, *height, ids)
		if err != nil {
			return err
		}
		over, state, err := ruleset.Execute(state, nil)
		if err != nil {
			return err
		}
		for !over {
			var next *rules.BoardState
			over, next, err = playTurn(ruleset, gameMap, state, mover.moves(state))
			if err != nil {
				return err
			}
			if !over {
				state = next
				turns++
			}
		}
		played++
	}
	elapsed := time.Since(start).Seconds()
	return json.NewEncoder(out).Encode(benchResult{
		EnvStepsPerSec: float64(turns) / elapsed,
		Games:          played,
		Turns:          turns,
		Seconds:        elapsed,
		Snakes:         *nSnakes,
		Width:          *width,
		Height:         *height,
		GoMaxProcs:     runtime.GOMAXPROCS(0),
		Ruleset:        *rulesetName,
		Map:            *mapName,
	})
}

type safeMover struct {
	rng      *rand.Rand
	width    int
	height   int
	occupied []bool
}

func newSafeMover(rng *rand.Rand, width, height int) *safeMover {
	return &safeMover{rng: rng, width: width, height: height, occupied: make([]bool, width*height)}
}

var directions = [4]struct {
	name   string
	dx, dy int
}{{rules.MoveUp, 0, 1}, {rules.MoveDown, 0, -1}, {rules.MoveLeft, -1, 0}, {rules.MoveRight, 1, 0}}

func (m *safeMover) moves(state *rules.BoardState) []rules.SnakeMove {
	for i := range m.occupied {
		m.occupied[i] = false
	}
	for _, s := range state.Snakes {
		if s.EliminatedCause != rules.NotEliminated {
			continue
		}
		n := len(s.Body)
		if n >= 2 && s.Body[n-1] != s.Body[n-2] {
			n-- // this tail moves away this turn
		}
		for _, p := range s.Body[:n] {
			if p.X >= 0 && p.X < m.width && p.Y >= 0 && p.Y < m.height {
				m.occupied[p.Y*m.width+p.X] = true
			}
		}
	}
	moves := make([]rules.SnakeMove, 0, len(state.Snakes))
	var kept [4]string
	for _, s := range state.Snakes {
		if s.EliminatedCause != rules.NotEliminated {
			continue
		}
		head := s.Body[0]
		k := 0
		for _, d := range directions {
			x, y := head.X+d.dx, head.Y+d.dy
			if x >= 0 && x < m.width && y >= 0 && y < m.height && !m.occupied[y*m.width+x] {
				kept[k] = d.name
				k++
			}
		}
		var move string
		if k > 0 {
			move = kept[m.rng.Intn(k)]
		} else {
			move = directions[m.rng.Intn(4)].name
		}
		moves = append(moves, rules.SnakeMove{ID: s.ID, Move: move})
	}
	return moves
}
