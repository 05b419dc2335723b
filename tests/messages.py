"""What users read at login: the exact texts, written once here for every test that reads
them (the protocol, matrix and Node-client tests)."""

WELCOME = "Welcome, {name}."
WELCOME_EVALUATION = "Welcome, {name}. OfficeStatus is being evaluated: {days} days left."
UNKNOWN = (
    "OfficeStatus does not know the user '{name}'. Ask your administrator to add you to the "
    "OfficeStatus License Server."
)
DISABLED = "The user '{name}' is disabled in OfficeStatus. Ask your administrator to enable you."
NOT_LICENSED = (
    "OfficeStatus 6 has no license installed. Ask your administrator to install a license."
)
EVALUATION_EXPIRED = (
    "The OfficeStatus evaluation ended on 2026-12-02. Ask your administrator to install a license."
)
OVER_CAPACITY = (
    "All 3 OfficeStatus seats are held by users enabled before you. Ask your administrator "
    "to disable a user or install more seats."
)
SESSION_ENDED = "Your OfficeStatus session has ended. Sign in again."
