defmodule Keyring.Test.Instances do
  @moduledoc false
  # Keyring instances in the test VM (own names and data dirs, loopback
  # ports 0), stopped when the test exits; keyrings between them.
  import ExUnit.Callbacks

  def start_instance(tag, opts \\ []) do
    name = :"kr_#{tag}_#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "#{name}")
    File.rm_rf!(dir)
    {:ok, pid} = Keyring.start_link(Keyword.merge([name: name, data_dir: dir], opts))
    Process.unlink(pid)

    on_exit(fn ->
      stop(pid)
      File.rm_rf!(dir)
    end)

    name
  end

  @doc """
  An instance that can be stopped and started again on the same data dir
  (identity, keyrings, address book): `{name, start}`; `start.()` starts it
  and returns its pid.
  """
  def restartable_instance(tag, opts \\ []) do
    name = :"kr_#{tag}_#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "#{name}")
    File.rm_rf!(dir)
    # Registered first, so it runs after every stop below.
    on_exit({name, :dir}, fn -> File.rm_rf!(dir) end)

    start = fn ->
      {:ok, pid} = Keyring.start_link(Keyword.merge([name: name, data_dir: dir], opts))
      Process.unlink(pid)
      on_exit({name, pid}, fn -> stop(pid) end)
      pid
    end

    {name, start}
  end

  def stop(pid) do
    Supervisor.stop(pid, :shutdown, 10_000)
  catch
    :exit, _ -> :ok
  end

  def key(instance), do: Keyring.Identity.public_key(instance: instance)
  def id(instance), do: Keyring.Identity.node_id(instance: instance)

  def mesh(instance), do: Keyring.Instance.fetch!(instance, :mesh)

  def connected(instance, ring), do: Keyring.Native.mesh_connected(mesh(instance), ring)

  @doc "Closes the link to `peer` on purpose (nobody redials it)."
  def disconnect(instance, ring, peer),
    do: Keyring.Native.mesh_disconnect(mesh(instance), ring, peer)

  @doc "A keyring created on `admin` that `members` joined by invite."
  def ring_with(admin, members, invite_opts \\ []) do
    {:ok, ring} = Keyring.Ring.create("test", instance: admin)

    for m <- members do
      {:ok, invite} = Keyring.Ring.invite(ring, [instance: admin] ++ invite_opts)
      {:ok, ^ring} = Keyring.join(invite, instance: m)
    end

    ring
  end
end
