package main

// init and step: the official CLI's board set-up and turn, one JSON line each.

import (
	"encoding/json"

	"github.com/BattlesnakeOfficial/rules"
	"github.com/BattlesnakeOfficial/rules/maps"
)

type initRequest struct {
	Ruleset wireRuleset `json:"ruleset"`
	Map     string      `json:"map"`
	Seed    int64       `json:"seed"`
	Solo    *bool       `json:"solo"`
	Width   int         `json:"width"`
	Height  int         `json:"height"`
	Snakes  []string    `json:"snakes"`
}

type stepRequest struct {
	Ruleset wireRuleset       `json:"ruleset"`
	Map     string            `json:"map"`
	Seed    int64             `json:"seed"`
	Solo    *bool             `json:"solo"`
	Turn    int               `json:"turn"`
	Board   wireBoard         `json:"board"`
	Moves   map[string]string `json:"moves"`
}

func mapID(id string) string {
	if id == "" {
		return "standard"
	}
	return id
}

// initLine makes the starting board as GameState.initializeBoardFromArgs does:
// maps.SetupBoard, then ruleset.Execute with no moves.
func initLine(line []byte) (any, error) {
	var req initRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, err
	}
	ruleset, solo, err := buildRuleset(req.Ruleset, req.Seed, req.Solo)
	if err != nil {
		return nil, err
	}
	state, err := maps.SetupBoard(mapID(req.Map), ruleset.Settings(), req.Width, req.Height, req.Snakes)
	if err != nil {
		return nil, err
	}
	ended, state, err := ruleset.Execute(state, nil)
	if err != nil {
		return nil, err
	}
	return wireResult{Turn: state.Turn, Board: fromState(state), GameOver: gameOverOn(state, solo), ExecuteGameOver: ended}, nil
}

// stepLine plays one turn as GameState.createNextBoardState does:
// PreUpdateBoard, Execute, PostUpdateBoard, Turn += 1. Every living snake gets
// a move; a missing one is sent as "" so the engine's default move (neck to
// head, else up) applies. Moves for eliminated or unknown snakes are dropped.
func stepLine(line []byte) (any, error) {
	var req stepRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, err
	}
	ruleset, solo, err := buildRuleset(req.Ruleset, req.Seed, req.Solo)
	if err != nil {
		return nil, err
	}
	gameMap, err := maps.GetMap(mapID(req.Map))
	if err != nil {
		return nil, err
	}
	state := toState(req.Turn, req.Board)
	var moves []rules.SnakeMove
	for _, s := range state.Snakes {
		if s.EliminatedCause == rules.NotEliminated {
			moves = append(moves, rules.SnakeMove{ID: s.ID, Move: req.Moves[s.ID]})
		}
	}
	ended, state, err := playTurn(ruleset, gameMap, state, moves)
	if err != nil {
		return nil, err
	}
	return wireResult{Turn: state.Turn, Board: fromState(state), GameOver: gameOverOn(state, solo), ExecuteGameOver: ended}, nil
}

// playTurn is the body of the CLI's createNextBoardState without the HTTP.
func playTurn(ruleset rules.Ruleset, gameMap maps.GameMap, state *rules.BoardState, moves []rules.SnakeMove) (bool, *rules.BoardState, error) {
	state, err := maps.PreUpdateBoard(gameMap, state, ruleset.Settings())
	if err != nil {
		return false, nil, err
	}
	ended, state, err := ruleset.Execute(state, moves)
	if err != nil {
		return false, nil, err
	}
	state, err = maps.PostUpdateBoard(gameMap, state, ruleset.Settings())
	if err != nil {
		return false, nil, err
	}
	state.Turn += 1
	return ended, state, nil
}
