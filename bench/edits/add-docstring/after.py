from statistics import median


def mean(values):
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)


def spread(values):
    """Return the difference between the largest and the smallest value."""
    return max(values) - min(values)


def summary(values):
    return {"mean": mean(values), "median": median(values), "spread": spread(values)}
