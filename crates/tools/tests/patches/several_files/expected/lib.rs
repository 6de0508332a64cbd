fn one() {
    1
}

fn two() {
    20
}
