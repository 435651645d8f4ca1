-- Billing schema. Money is integer minor units + ISO currency. No PAN, CVV or cryptogram anywhere.

CREATE TABLE tariffs (
    code          text PRIMARY KEY CHECK (code ~ '^[a-z0-9_-]{1,64}$'),
    name          text NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    currency      char(3) NOT NULL,
    period_unit   text NOT NULL CHECK (period_unit IN ('second', 'day', 'week', 'month', 'year')),
    period_count  integer NOT NULL CHECK (period_count > 0),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One account per auth-service user; registered on the first payment.
CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Saved cards: gateway token + mask only.
CREATE TABLE payment_methods (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id     uuid NOT NULL REFERENCES accounts (id),
    gateway_token  text NOT NULL,
    card_mask      text NOT NULL,
    card_exp       text,
    card_type      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_methods_gateway_token_key UNIQUE (gateway_token)
);

CREATE TABLE subscriptions (
    id                    uuid PRIMARY KEY,
    account_id            uuid NOT NULL REFERENCES accounts (id),
    tariff_code           text NOT NULL REFERENCES tariffs (code),
    -- price and period copied from the tariff at start: tariff edits do not touch live subscriptions
    amount_minor          bigint NOT NULL CHECK (amount_minor > 0),
    currency              char(3) NOT NULL,
    period_unit           text NOT NULL,
    period_count          integer NOT NULL CHECK (period_count > 0),
    status                text NOT NULL,
    workflow_id           text NOT NULL,
    payment_method_id     uuid REFERENCES payment_methods (id),
    anchor_at             timestamptz NOT NULL,
    current_period_start  timestamptz,
    current_period_end    timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_account_idx ON subscriptions (account_id);

CREATE TABLE invoices (
    id               uuid PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES subscriptions (id),
    account_id       uuid NOT NULL REFERENCES accounts (id),
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL CHECK (period_end > period_start),
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    currency         char(3) NOT NULL,
    status           text NOT NULL CHECK (status IN ('open', 'paid', 'void', 'uncollectible')),
    paid_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_subscription_period_key UNIQUE (subscription_id, period_start)
);

-- Every gateway transaction billing has seen, approved or declined. Recorded once.
CREATE TABLE transactions (
    id                      uuid PRIMARY KEY,
    gateway_transaction_id  bigint NOT NULL,
    invoice_id              uuid NOT NULL REFERENCES invoices (id),
    account_id              uuid NOT NULL REFERENCES accounts (id),
    status                  text NOT NULL,
    reason_code             integer NOT NULL,
    reason                  text NOT NULL,
    amount_minor            bigint NOT NULL,
    currency                char(3) NOT NULL,
    card_mask               text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_gateway_transaction_id_key UNIQUE (gateway_transaction_id)
);
CREATE INDEX transactions_invoice_idx ON transactions (invoice_id);

-- Final answers of StartSubscription by client request id, so a retry after the workflow has
-- closed (e.g. declined) returns the first answer instead of charging again.
CREATE TABLE start_requests (
    account_id       uuid NOT NULL,
    request_id       text NOT NULL,
    subscription_id  uuid NOT NULL,
    outcome          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, request_id)
);

-- Pending and answered 3-D Secure challenges: the TermUrl finds the subscription by MD.
CREATE TABLE three_ds_challenges (
    gateway_transaction_id  bigint PRIMARY KEY,
    subscription_id         uuid NOT NULL REFERENCES subscriptions (id),
    account_id              uuid NOT NULL REFERENCES accounts (id),
    invoice_id              uuid NOT NULL REFERENCES invoices (id),
    created_at              timestamptz NOT NULL DEFAULT now()
);
