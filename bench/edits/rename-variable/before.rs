//! Order totals.

pub struct Line {
    pub price_cents: u64,
    pub quantity: u32,
}

pub fn order_total(lines: &[Line]) -> u64 {
    let mut total = 0;
    for line in lines {
        total += line.price_cents * u64::from(line.quantity);
    }
    total
}

pub fn with_discount(lines: &[Line], percent: u64) -> u64 {
    let full = order_total(lines);
    full - full * percent / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals() {
        let lines = [Line { price_cents: 250, quantity: 2 }, Line { price_cents: 100, quantity: 1 }];
        assert_eq!(order_total(&lines), 600);
        assert_eq!(with_discount(&lines, 50), 300);
    }
}
