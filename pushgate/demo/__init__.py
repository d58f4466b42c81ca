"""``pushgate demo``: the whole product on one machine with an embedded Redis."""
