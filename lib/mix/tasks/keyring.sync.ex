defmodule Mix.Tasks.Keyring.Sync do
  @shortdoc "Shows content sync status; mirrors keyrings for a while"
  @moduledoc """
  Content sync of the node whose data lives in `--data-dir` (default: the
  `:keyring, :data_dir` config or `.keyring/<node>`): its keyrings and the
  members linked in each, blobs shared into each, partial (unfinished)
  downloads, and the transfers run.

      mix keyring.sync [--mirror RING]... [--for SECONDS] [--data-dir DIR] [--passphrase P]

  With `--mirror`, the node fetches what linked members share into those
  keyrings (`Keyring.Sync.mirror/2`) for `--for` seconds (default 30), with
  a progress bar per transfer, then prints the status. Run it while the
  node is stopped (it opens the node's data dir), or use `Keyring.Sync` on
  the running node.
  """
  use Mix.Task

  alias Mix.Keyring.TransferProgress

  @switches [mirror: :keep, for: :integer, data_dir: :string, passphrase: :string]
  @cli :keyring_cli

  @impl Mix.Task
  def run(args) do
    {opts, _} = OptionParser.parse!(args, strict: @switches)
    Mix.Task.run("app.start", ["--no-start"])
    Application.put_env(:keyring, :autostart, false)
    {:ok, _} = Application.ensure_all_started(:keyring)
    {:ok, _} = Keyring.start_link(Mix.Tasks.Keyring.Keyring.instance_opts(opts))

    case Keyword.get_values(opts, :mirror) do
      [] ->
        :ok

      rings ->
        :ok = Keyring.Sync.subscribe(instance: @cli)
        for r <- rings, do: :ok = Keyring.Sync.mirror(r, instance: @cli)
        watch(System.monotonic_time(:millisecond) + (opts[:for] || 30) * 1000)
    end

    status()
  end

  defp watch(deadline) do
    left = deadline - System.monotonic_time(:millisecond)

    receive do
      {:keyring_sync, :finished, t} ->
        TransferProgress.draw(t)
        IO.write(:stderr, "\n")
        Mix.shell().info(TransferProgress.summary(t))
        watch(deadline)

      {:keyring_sync, _, t} ->
        TransferProgress.draw(t)
        watch(deadline)
    after
      max(left, 0) -> :ok
    end
  end

  defp status do
    say = &Mix.shell().info/1
    mirrored = Keyring.Sync.mirrored(instance: @cli)

    for id <- Keyring.Ring.list(instance: @cli) do
      {:ok, info} = Keyring.Ring.info(id, instance: @cli)
      shared = length(Keyring.Store.tags(id, instance: @cli))
      linked = length(Keyring.Ring.connected(id, instance: @cli))
      m = if id in mirrored, do: " (mirrored)", else: ""

      say.(
        "#{Keyring.Ring.encode_id(id)}  #{info.name}#{m}: #{length(info.members)} members, " <>
          "#{linked} linked, #{shared} blobs shared here"
      )
    end

    stats = Keyring.Store.stats(instance: @cli)

    say.(
      "store: #{stats.blobs} blobs, #{TransferProgress.bytes(stats.bytes)}; " <>
        "#{stats.partials} partial downloads (resumed by the next fetch)"
    )

    for t <- Keyring.Sync.transfers(instance: @cli), do: say.(TransferProgress.summary(t))
  end
end
