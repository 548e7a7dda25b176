defmodule Keyring.Test.TmpDir do
  @moduledoc false
  # A fresh directory under the system tmp dir, removed when the test exits.

  def new(prefix \\ "keyring-test") do
    # unique_integer restarts with every VM; the random part keeps runs apart.
    suffix =
      "#{System.unique_integer([:positive])}-#{Base.encode16(:crypto.strong_rand_bytes(4))}"

    dir = Path.join(System.tmp_dir!(), "#{prefix}-#{suffix}")
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf(dir) end)
    dir
  end
end
