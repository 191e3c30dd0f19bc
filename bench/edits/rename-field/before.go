package accounts

import (
	"fmt"
	"strings"
)

type Account struct {
	ID       int
	UserName string
	Email    string
}

func (a Account) Display() string {
	return fmt.Sprintf("%s <%s>", a.UserName, a.Email)
}

func Normalize(a Account) Account {
	a.UserName = strings.ToLower(strings.TrimSpace(a.UserName))
	a.Email = strings.ToLower(a.Email)
	return a
}
