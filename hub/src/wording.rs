//! Counts in messages, written as people read them: "1 try left", "2 tries left".

/// `n` followed by `one` when it is 1 and by `many` otherwise ("0 photos").
pub fn count(n: impl TryInto<u64> + Copy, one: &str, many: &str) -> String {
    // A count that does not fit in u64 (a negative one) is no count at all.
    let n: u64 = n.try_into().unwrap_or(0);
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1_i64, "try", "tries"), "1 try");
        assert_eq!(count(0_usize, "try", "tries"), "0 tries");
        assert_eq!(count(4_i64, "try", "tries"), "4 tries");
        assert_eq!(count(-1_i64, "try", "tries"), "0 tries");
    }
}
