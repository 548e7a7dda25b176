defmodule Keyring.Store.Options do
  @moduledoc false
  # The `store:` options of a Keyring instance (documented in Keyring.Store):
  # defaults, checks and the wording of the errors in one place.

  @defaults [
    cache_bytes: 64 * 1024 * 1024,
    read_threads: 2,
    ingest_threads: 2,
    gc_interval: nil,
    gc_budget: 1_000
  ]

  @spec validate!(keyword()) :: keyword()
  def validate!(opts) do
    opts = Keyword.validate!(opts, @defaults)

    for {key, value} <- opts, expected = invalid(key, value) do
      raise ArgumentError, "#{inspect(key)} must be #{expected}, got: #{inspect(value)}"
    end

    opts
  end

  # nil when valid, else what was expected.
  defp invalid(:cache_bytes, n) when is_integer(n) and n >= 0, do: nil
  defp invalid(:cache_bytes, _), do: "a non-negative integer"
  defp invalid(key, n) when key in [:read_threads, :ingest_threads] and n in 1..64, do: nil
  defp invalid(key, _) when key in [:read_threads, :ingest_threads], do: "an integer in 1..64"
  defp invalid(:gc_interval, nil), do: nil
  defp invalid(:gc_interval, n) when is_integer(n) and n > 0, do: nil
  defp invalid(:gc_interval, _), do: "nil or a positive integer (ms)"
  defp invalid(:gc_budget, n) when n in 1..1_000_000, do: nil
  defp invalid(:gc_budget, _), do: "an integer in 1..1_000_000"
end
