"""The loop that fires runs and drives them through their task graphs.

Rule: `scheduler` owns the database. It is the only code that writes run and
task state, always in a conditional transaction, and it uses `executor` to run
attempts. Time comes in as a `clock` argument.
"""
