fn one() {
    10
}

fn two() {
    2
}
