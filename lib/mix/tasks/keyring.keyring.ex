defmodule Mix.Tasks.Keyring.Keyring do
  @shortdoc "Creates and lists keyrings (trust groups)"
  @moduledoc """
  Manages the keyrings of the node whose data lives in `--data-dir`
  (default: the `:keyring, :data_dir` config or `.keyring/<node>`).

      mix keyring.keyring new NAME      # create a keyring; prints its id
      mix keyring.keyring list          # ids, names and member counts

  Run it while the node is stopped (it opens the node's data dir), or call
  `Keyring.Ring.create/2` on the running node.
  """
  use Mix.Task

  @switches [data_dir: :string, passphrase: :string]
  @cli :keyring_cli

  @impl Mix.Task
  def run(args) do
    {opts, rest} = OptionParser.parse!(args, strict: @switches)
    Mix.Task.run("app.start", ["--no-start"])
    Application.put_env(:keyring, :autostart, false)
    {:ok, _} = Application.ensure_all_started(:keyring)
    {:ok, _} = Keyring.start_link(instance_opts(opts))

    case rest do
      ["new", name] ->
        case Keyring.Ring.create(name, instance: @cli) do
          {:ok, id} -> Mix.shell().info(Keyring.Ring.encode_id(id))
          {:error, reason} -> Mix.raise("could not create instance: #{inspect(reason)}")
        end

      ["list"] ->
        for id <- Keyring.Ring.list(instance: @cli) do
          {:ok, info} = Keyring.Ring.info(id, instance: @cli)

          Mix.shell().info(
            "#{Keyring.Ring.encode_id(id)}  #{info.name}  #{length(info.members)} members"
          )
        end

      _ ->
        Mix.raise("usage: mix keyring.keyring new NAME | mix keyring.keyring list")
    end
  end

  @doc false
  def instance_opts(opts) do
    [name: :keyring_cli, data_dir: opts[:data_dir], passphrase: opts[:passphrase]]
    |> Enum.reject(fn {_, v} -> is_nil(v) end)
  end
end
