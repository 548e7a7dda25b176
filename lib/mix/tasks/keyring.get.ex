defmodule Mix.Tasks.Keyring.Get do
  @shortdoc "Fetches a blob by cid from keyring members, with a progress bar"
  @moduledoc """
  Fetches blob `CID` into the store of the node whose data lives in
  `--data-dir` (default: the `:keyring, :data_dir` config or
  `.keyring/<node>`) from members of a keyring this node shares with them,
  verifying every 16 KiB group (`Keyring.Sync.fetch/2`), and optionally
  writes it to a file.

      mix keyring.get CID [--from PEER[@HOST:PORT]]... [--keyring RING]
                          [-o PATH] [--wait SECONDS] [--data-dir DIR] [--passphrase P]

  `--from` names a member (its node id) and, if this node has not reached
  it before, where it listens; without `--from`, every member that links up
  within `--wait` seconds (default 10) is asked. A progress bar is kept up to
  date on stderr. An interrupted fetch resumes where it stopped. Run it while
  the node is stopped (it opens the node's data dir), or call
  `Keyring.Sync.fetch/2` on the running node.
  """
  use Mix.Task

  alias Mix.Keyring.TransferProgress

  @switches [
    from: :keep,
    keyring: :string,
    output: :string,
    wait: :integer,
    data_dir: :string,
    passphrase: :string
  ]
  @aliases [o: :output]
  @cli :keyring_cli

  @impl Mix.Task
  def run(args) do
    {opts, rest} = OptionParser.parse!(args, strict: @switches, aliases: @aliases)

    cid =
      case rest do
        [cid] -> cid
        _ -> Mix.raise("usage: mix keyring.get CID [--from PEER] [-o PATH]")
      end

    Mix.Task.run("app.start", ["--no-start"])
    Application.put_env(:keyring, :autostart, false)
    {:ok, _} = Application.ensure_all_started(:keyring)
    {:ok, _} = Keyring.start_link(Mix.Tasks.Keyring.Keyring.instance_opts(opts))

    unless Keyring.Store.has?(cid, instance: @cli), do: fetch(cid, opts)

    case opts[:output] do
      nil ->
        {:ok, size} = Keyring.Store.size(cid, instance: @cli)
        Mix.shell().info("#{cid} #{size} bytes")

      path ->
        {:ok, pieces} = Keyring.Store.stream(cid, instance: @cli)
        File.open!(path, [:write, :binary], fn f -> Enum.each(pieces, &IO.binwrite(f, &1)) end)

        Mix.shell().info("#{cid} -> #{path}")
    end
  end

  defp fetch(cid, opts) do
    from = opts |> Keyword.get_values(:from) |> Enum.map(&peer/1)
    keyring = opts[:keyring] && Keyring.Ring.id!(opts[:keyring])
    if from == [], do: wait_for_link(keyring, (opts[:wait] || 10) * 1000)
    :ok = Keyring.Sync.subscribe(instance: @cli)

    fetch_opts =
      [instance: @cli, async: true, keyring: keyring] ++
        if from == [], do: [], else: [from: from]

    case Keyring.Sync.fetch(cid, fetch_opts) do
      {:ok, id} ->
        t = TransferProgress.follow(id, 120_000)
        Mix.shell().info(TransferProgress.summary(t))
        if t.stage != :done, do: Mix.raise("could not fetch #{cid}")

      {:error, reason} ->
        Mix.raise("could not fetch #{cid}: #{inspect(reason)}")
    end
  end

  defp peer(text) do
    case String.split(text, "@", parts: 2) do
      [id, addr] -> {id, addr}
      [id] -> id
    end
  end

  # Members link up once the node has restored its keyrings and dialled them.
  defp wait_for_link(keyring, within) do
    deadline = System.monotonic_time(:millisecond) + within

    Stream.repeatedly(fn ->
      rings = if keyring, do: [keyring], else: Keyring.Ring.list(instance: @cli)
      linked = Enum.any?(rings, &(Keyring.Ring.connected(&1, instance: @cli) != []))

      cond do
        linked -> :linked
        System.monotonic_time(:millisecond) > deadline -> :timeout
        true -> Process.sleep(100)
      end
    end)
    |> Enum.find(&(&1 in [:linked, :timeout]))
  end
end
