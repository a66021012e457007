package main

// The JSON shapes shared by init and step, and their conversion to and from
// the engine's types.

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/BattlesnakeOfficial/rules"
)

type wirePoint struct {
	X int `json:"x"`
	Y int `json:"y"`
}

type wireSnake struct {
	ID               string      `json:"id"`
	Health           int         `json:"health"`
	Body             []wirePoint `json:"body"`
	EliminatedCause  string      `json:"eliminatedCause"`
	EliminatedBy     string      `json:"eliminatedBy"`
	EliminatedOnTurn int         `json:"eliminatedOnTurn"`
}

type wireBoard struct {
	Width   int         `json:"width"`
	Height  int         `json:"height"`
	Food    []wirePoint `json:"food"`
	Hazards []wirePoint `json:"hazards"`
	Snakes  []wireSnake `json:"snakes"`
}

// wireSettings mirrors the API's ruleset.settings object. A field left out is
// not passed to the engine, so the engine's own default applies (0 for the
// food and damage settings, 20 for shrinkEveryNTurns), not the CLI's flag
// defaults (15, 1, 14, 25).
type wireSettings struct {
	FoodSpawnChance     *int    `json:"foodSpawnChance"`
	MinimumFood         *int    `json:"minimumFood"`
	HazardDamagePerTurn *int    `json:"hazardDamagePerTurn"`
	HazardMap           *string `json:"hazardMap"`
	HazardMapAuthor     *string `json:"hazardMapAuthor"`
	Royale              struct {
		ShrinkEveryNTurns *int `json:"shrinkEveryNTurns"`
	} `json:"royale"`
}

type wireRuleset struct {
	Name     string       `json:"name"`
	Settings wireSettings `json:"settings"`
	// Params are raw engine parameters (rules.Param* names), applied after
	// Settings; for settings the API object has no field for.
	Params map[string]string `json:"params"`
}

type wireResult struct {
	Turn  int       `json:"turn"`
	Board wireBoard `json:"board"`
	// GameOver is the ruleset's game-over stage evaluated on the returned state.
	GameOver bool `json:"gameOver"`
	// ExecuteGameOver is what ruleset.Execute itself returned: true when the
	// incoming state was already over (the pipeline then stops at its first
	// stage and the board only goes through the map's PostUpdateBoard).
	ExecuteGameOver bool `json:"executeGameOver"`
}

// params maps the API settings object to the engine's parameter names.
func (r wireRuleset) params() map[string]string {
	p := map[string]string{}
	s := r.Settings
	if s.FoodSpawnChance != nil {
		p[rules.ParamFoodSpawnChance] = strconv.Itoa(*s.FoodSpawnChance)
	}
	if s.MinimumFood != nil {
		p[rules.ParamMinimumFood] = strconv.Itoa(*s.MinimumFood)
	}
	if s.HazardDamagePerTurn != nil {
		p[rules.ParamHazardDamagePerTurn] = strconv.Itoa(*s.HazardDamagePerTurn)
	}
	if s.HazardMap != nil {
		p[rules.ParamHazardMap] = *s.HazardMap
	}
	if s.HazardMapAuthor != nil {
		p[rules.ParamHazardMapAuthor] = *s.HazardMapAuthor
	}
	if s.Royale.ShrinkEveryNTurns != nil {
		p[rules.ParamShrinkEveryNTurns] = strconv.Itoa(*s.Royale.ShrinkEveryNTurns)
	}
	for k, v := range r.Params {
		p[k] = v
	}
	return p
}

// buildRuleset builds the ruleset the way the brief fixes it: solo defaults to
// name == "solo" (the CLI itself uses "fewer than two snake URLs"); an
// explicit solo flag overrides that.
func buildRuleset(r wireRuleset, seed int64, solo *bool) (rules.Ruleset, bool, error) {
	if seed == 0 {
		// Settings.GetRand treats seed 0 as "no seed" and falls back to the
		// process-global generator, so nothing would be reproducible.
		return nil, false, errors.New("seed 0 is not reproducible in the engine (it uses the global generator); use a non-zero seed")
	}
	name := r.Name
	if name == "" {
		name = rules.GameTypeStandard
	}
	isSolo := name == rules.GameTypeSolo
	if solo != nil {
		isSolo = *solo
	}
	rs := rules.NewRulesetBuilder().
		WithParams(r.params()).
		WithSeed(seed).
		WithSolo(isSolo).
		NamedRuleset(name)
	if rs.Name() != name {
		return nil, false, fmt.Errorf("unknown ruleset %q", name)
	}
	return rs, isSolo || name == rules.GameTypeSolo, nil
}

func gameOverOn(state *rules.BoardState, solo bool) bool {
	var over bool
	if solo {
		over, _ = rules.GameOverSolo(state, rules.Settings{}, nil)
	} else {
		over, _ = rules.GameOverStandard(state, rules.Settings{}, nil)
	}
	return over
}

func toPoints(ps []wirePoint) []rules.Point {
	out := make([]rules.Point, len(ps))
	for i, p := range ps {
		out[i] = rules.Point{X: p.X, Y: p.Y}
	}
	return out
}

func fromPoints(ps []rules.Point) []wirePoint {
	out := make([]wirePoint, len(ps))
	for i, p := range ps {
		out[i] = wirePoint{X: p.X, Y: p.Y}
	}
	return out
}

func toState(turn int, b wireBoard) *rules.BoardState {
	state := rules.NewBoardState(b.Width, b.Height)
	state.Turn = turn
	state.Food = toPoints(b.Food)
	state.Hazards = toPoints(b.Hazards)
	state.Snakes = make([]rules.Snake, len(b.Snakes))
	for i, s := range b.Snakes {
		state.Snakes[i] = rules.Snake{
			ID:               s.ID,
			Health:           s.Health,
			Body:             toPoints(s.Body),
			EliminatedCause:  s.EliminatedCause,
			EliminatedBy:     s.EliminatedBy,
			EliminatedOnTurn: s.EliminatedOnTurn,
		}
	}
	return state
}

func fromState(state *rules.BoardState) wireBoard {
	b := wireBoard{
		Width:   state.Width,
		Height:  state.Height,
		Food:    fromPoints(state.Food),
		Hazards: fromPoints(state.Hazards),
		Snakes:  make([]wireSnake, len(state.Snakes)),
	}
	for i, s := range state.Snakes {
		b.Snakes[i] = wireSnake{
			ID:               s.ID,
			Health:           s.Health,
			Body:             fromPoints(s.Body),
			EliminatedCause:  s.EliminatedCause,
			EliminatedBy:     s.EliminatedBy,
			EliminatedOnTurn: s.EliminatedOnTurn,
		}
	}
	return b
}
