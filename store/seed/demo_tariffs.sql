-- Demo tariffs for the local stack (idempotent).
INSERT INTO tariffs (code, name, amount_minor, currency, period_unit, period_count) VALUES
    ('basic-monthly', 'Basic, 299 RUB / month', 29900, 'RUB', 'month', 1),
    ('premium-monthly', 'Premium, 599 RUB / month', 59900, 'RUB', 'month', 1),
    ('premium-yearly', 'Premium, 2990 RUB / year', 299000, 'RUB', 'year', 1),
    ('demo-2-minutes', 'Demo, 10 RUB / 2 minutes (renews fast, for trying the stack)', 1000, 'RUB', 'second', 120)
ON CONFLICT (code) DO NOTHING;
