def factorial(n):
    result = 1
    for i in range(1, n + 1):
        result *= i
    return result


def binomial(n, k):
    if k < 0 or k > n:
        return 0
    return factorial(n) // (factorial(k) * factorial(n - k))


if __name__ == "__main__":
    for n in range(6):
        print(n, factorial(n), binomial(n, 2))
