fn a() {
    x
}
fn b() {
    z
}
