module github.com/ouroboros/bsoracle

go 1.21

require github.com/BattlesnakeOfficial/rules v1.2.3
