package accounts

import (
	"fmt"
	"strings"
)

type Account struct {
	ID       int
	Login    string
	Email    string
}

func (a Account) Display() string {
	return fmt.Sprintf("%s <%s>", a.Login, a.Email)
}

func Normalize(a Account) Account {
	a.Login = strings.ToLower(strings.TrimSpace(a.Login))
	a.Email = strings.ToLower(a.Email)
	return a
}
