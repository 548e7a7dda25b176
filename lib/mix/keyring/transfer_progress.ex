defmodule Mix.Keyring.TransferProgress do
  @moduledoc false
  # A progress bar on stderr for a Keyring.Sync transfer, redrawn from the
  # transfer's events, and the one-line summary the sync tasks print.

  import Bitwise

  @doc false
  # Waits for transfer `id`'s end (the caller subscribed to Keyring.Sync
  # events first), drawing its progress; the final transfer map.
  def follow(id, timeout_ms) do
    receive do
      {:keyring_sync, kind, %{id: ^id} = t} when kind in [:started, :progress] ->
        draw(t)
        follow(id, timeout_ms)

      {:keyring_sync, :finished, %{id: ^id} = t} ->
        draw(t)
        IO.write(:stderr, "\n")
        t
    after
      timeout_ms -> Mix.raise("the transfer made no progress for #{div(timeout_ms, 1000)} s")
    end
  end

  @doc false
  def draw(t) do
    pct = if t.bytes_total > 0, do: min(100, div(t.bytes_done * 100, t.bytes_total)), else: 0
    bar = String.duplicate("=", div(pct, 4)) |> String.pad_trailing(25)
    eta = if t.eta_s, do: " eta #{t.eta_s}s", else: ""

    IO.write(
      :stderr,
      "\r[#{bar}] #{pct}% #{bytes(t.bytes_done)}/#{bytes(t.bytes_total)} " <>
        "#{t.blobs_done}/#{t.blobs_total} blobs #{bytes(round(t.rate))}/s " <>
        "#{map_size(t.providers)} providers#{eta}   "
    )
  end

  @doc false
  def summary(t) do
    errors =
      Enum.map_join(t.errors, "; ", fn %{provider: p, error: e} ->
        "#{Keyring.Identity.NodeId.encode(p) |> String.slice(0, 8)}: #{e}"
      end)

    "transfer #{t.id} #{inspect(t.stage)}: #{t.blobs_done}/#{t.blobs_total} blobs, " <>
      "#{bytes(t.bytes_done)}/#{bytes(t.bytes_total)}" <>
      if(errors == "", do: "", else: " (dropped: #{errors})")
  end

  @doc false
  def bytes(n) when n >= 1 <<< 30, do: "#{Float.round(n / (1 <<< 30), 2)} GiB"
  def bytes(n) when n >= 1 <<< 20, do: "#{Float.round(n / (1 <<< 20), 1)} MiB"
  def bytes(n) when n >= 1 <<< 10, do: "#{Float.round(n / (1 <<< 10), 1)} KiB"
  def bytes(n), do: "#{n} B"
end
