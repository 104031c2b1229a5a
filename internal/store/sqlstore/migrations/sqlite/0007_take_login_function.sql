-- PostgreSQL gets gatehouse_take_login here, so that a login's
-- attack-protection take is one round trip and one commit. SQLite needs
-- nothing: the take is already one job of a group commit, and its one
-- writer cannot deadlock. The version stays in step with PostgreSQL's.
SELECT 1;
